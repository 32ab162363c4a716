package gateway

import (
	"context"

	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/proxyaudit"
)

// Broker is what the gateway asks of the broker. *brokerclient.Client does
// it over HTTP (dromos gateway); dromos serve passes one that calls the
// broker in the same process (internal/localbroker). Either way every error
// is an *httpapi.Error mapped as brokerclient maps broker answers, so that
// agents see the same envelopes in both deployments.
type Broker interface {
	ConsentSpec(ctx context.Context, req brokerclient.ConsentRequest) (brokerclient.Consent, error)
	Connection(ctx context.Context, id, clientName string) (brokerclient.Connection, error)
	ListConnections(ctx context.Context, q brokerclient.ConnectionQuery) (brokerclient.ConnectionPage, error)
	Token(ctx context.Context, id, clientName string) (brokerclient.Token, error)
	Refresh(ctx context.Context, id, clientName string) (brokerclient.Token, error)
	// TokenWith and RefreshWith are Token and Refresh with options (the
	// agent's id-token option).
	TokenWith(ctx context.Context, id, clientName string, o brokerclient.TokenOptions) (brokerclient.Token, error)
	RefreshWith(ctx context.Context, id, clientName string, o brokerclient.TokenOptions) (brokerclient.Token, error)
	DeleteConnection(ctx context.Context, id, clientName string) error
	Catalog(ctx context.Context) ([]brokerclient.CatalogEntry, error)
	Providers(ctx context.Context) ([]brokerclient.Provider, error)
	// ProviderAPI is a provider's API proxy configuration.
	ProviderAPI(ctx context.Context, id string) (brokerclient.ProviderAPI, error)
	// RecordProxyCalls hands the broker a batch of the API proxy's audit
	// records (the gateway stores nothing itself).
	RecordProxyCalls(ctx context.Context, events []proxyaudit.Event) error
	// ConfirmConnection presents the application's confirmation of its
	// user (never retried: the value is single-use).
	ConfirmConnection(ctx context.Context, req brokerclient.ConfirmRequest) (brokerclient.Confirmation, error)

	// An agent's webhook endpoints.
	CreateWebhook(ctx context.Context, clientName, rawURL string, events []string) (brokerclient.WebhookEndpoint, error)
	ListWebhooks(ctx context.Context, clientName string) ([]brokerclient.WebhookEndpoint, error)
	DeleteWebhook(ctx context.Context, clientName, id string) error
	RotateWebhookSecret(ctx context.Context, clientName, id string) (brokerclient.WebhookEndpoint, error)
	WebhookDeliveries(ctx context.Context, clientName, id string, limit int) ([]brokerclient.WebhookDelivery, error)
	RetryWebhookDelivery(ctx context.Context, clientName, id, deliveryID string) (brokerclient.WebhookDelivery, error)
}

var _ Broker = (*brokerclient.Client)(nil)
