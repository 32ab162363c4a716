package broker

import (
	"context"
	"net/http"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/webhook/delivery"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
)

// newWebhooks wires the webhook endpoint manager and the delivery
// dispatcher. Outside production (ProviderNetGuard off) endpoints may use
// http and private addresses, like providers; cloud metadata and
// link-local addresses are refused at every dial all the same.
func (b *Broker) newWebhooks(cfg Config, d Deps) error {
	allowPrivate := !cfg.ProviderNetGuard
	mgr, err := endpoint.New(endpoint.Config{AllowPrivate: allowPrivate},
		endpoint.Deps{Store: d.Store, Vault: d.Vault, Now: d.Now, Rand: d.Rand, Logger: d.Logger, Audit: b.audit})
	if err != nil {
		return err
	}
	client := d.WebhookClient
	if client == nil {
		client = delivery.NewClient(allowPrivate)
	}
	x, err := delivery.New(cfg.Webhooks, delivery.Deps{Store: d.Store, Secrets: mgr, Client: client,
		Logger: d.Logger, Registerer: d.Registerer, Now: d.Now,
		Audit: func(_ context.Context, e storage.AuditEvent) { b.auditq.Add(e) }})
	if err != nil {
		return err
	}
	b.webhooks, b.dispatcher = mgr, x
	return nil
}

// runWebhooks delivers webhook messages until ctx ends; the returned stop
// waits for attempts in flight.
func (b *Broker) runWebhooks(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.dispatcher.Run(ctx)
	}()
	return func() { <-done }
}

// webhookRoutes mounts the webhook API behind the broker's guards.
func (b *Broker) webhookRoutes(guarded func(string, func(http.ResponseWriter, *http.Request) error)) {
	b.webhooks.Routes(guarded)
}
