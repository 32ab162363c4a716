package brokerclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Operation names of the webhook calls.
const (
	OpCreateWebhook     = "create_webhook"
	OpListWebhooks      = "list_webhooks"
	OpDeleteWebhook     = "delete_webhook"
	OpRotateWebhook     = "rotate_webhook_secret"
	OpWebhookDeliveries = "webhook_deliveries"
	OpRetryWebhook      = "retry_webhook_delivery"
)

// WebhookEndpoint is a broker webhook endpoint. Secret is set only in the
// answers that create or rotate it: callers must not log it.
type WebhookEndpoint struct {
	ID                  string     `json:"id"`
	URL                 string     `json:"url"`
	Events              []string   `json:"events"`
	Enabled             bool       `json:"enabled"`
	DisabledReason      string     `json:"disabled_reason"`
	FailingSince        *time.Time `json:"failing_since"`
	PreviousSecretUntil *time.Time `json:"previous_secret_valid_until"`
	Secret              string     `json:"secret"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// WebhookDelivery is one entry of an endpoint's deliveries log.
type WebhookDelivery struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	ConnectionID   string     `json:"connection_id"`
	Sequence       int64      `json:"sequence"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	ResponseStatus int        `json:"response_status"`
	LatencyMS      int64      `json:"latency_ms"`
	Error          string     `json:"error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

type createWebhookBody struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
}

// CreateWebhook registers an endpoint for clientName. Never retried: a
// lost answer must not leave two endpoints.
func (cl *Client) CreateWebhook(ctx context.Context, clientName, rawURL string, events []string) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := cl.do(ctx, call{op: OpCreateWebhook, method: http.MethodPost, path: []string{"webhooks"},
		query: clientQuery(clientName), body: createWebhookBody{URL: rawURL, Events: events}}, &out)
	return out, err
}

// ListWebhooks lists clientName's endpoints.
func (cl *Client) ListWebhooks(ctx context.Context, clientName string) ([]WebhookEndpoint, error) {
	var out struct {
		Webhooks []WebhookEndpoint `json:"webhooks"`
	}
	err := cl.do(ctx, call{op: OpListWebhooks, method: http.MethodGet, path: []string{"webhooks"}, query: clientQuery(clientName)}, &out)
	return out.Webhooks, err
}

// DeleteWebhook deletes one of clientName's endpoints.
func (cl *Client) DeleteWebhook(ctx context.Context, clientName, id string) error {
	return cl.do(ctx, call{op: OpDeleteWebhook, method: http.MethodDelete, path: []string{"webhooks", id}, query: clientQuery(clientName)}, nil)
}

// RotateWebhookSecret gives the endpoint a new secret and returns it.
func (cl *Client) RotateWebhookSecret(ctx context.Context, clientName, id string) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := cl.do(ctx, call{op: OpRotateWebhook, method: http.MethodPost, path: []string{"webhooks", id, "rotate-secret"},
		query: clientQuery(clientName)}, &out)
	return out, err
}

// WebhookDeliveries lists an endpoint's deliveries, newest first (limit 0:
// the broker's default).
func (cl *Client) WebhookDeliveries(ctx context.Context, clientName, id string, limit int) ([]WebhookDelivery, error) {
	v := url.Values{"client_name": {clientName}}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	err := cl.do(ctx, call{op: OpWebhookDeliveries, method: http.MethodGet, path: []string{"webhooks", id, "deliveries"}, query: v.Encode()}, &out)
	return out.Deliveries, err
}

// RetryWebhookDelivery makes one delivery due again now.
func (cl *Client) RetryWebhookDelivery(ctx context.Context, clientName, id, deliveryID string) (WebhookDelivery, error) {
	var out WebhookDelivery
	err := cl.do(ctx, call{op: OpRetryWebhook, method: http.MethodPost, path: []string{"webhooks", id, "deliveries", deliveryID, "retry"},
		query: clientQuery(clientName)}, &out)
	return out, err
}
