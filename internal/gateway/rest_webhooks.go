package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
)

// webhookRoutes serves the agent's lifecycle webhook endpoints, each call
// passed to the broker under the caller's client name, so an agent only
// ever reaches its own endpoints.
func (g *Gateway) webhookRoutes(route func(method, path string, h http.Handler)) {
	route(http.MethodPost, "/v1/webhooks", g.authed(g.createWebhook))
	route(http.MethodGet, "/v1/webhooks", g.authed(g.listWebhooks))
	route(http.MethodDelete, "/v1/webhooks/{id}", g.authed(g.deleteWebhook))
	route(http.MethodPost, "/v1/webhooks/{id}/rotate-secret", g.authed(g.rotateWebhookSecret))
	route(http.MethodGet, "/v1/webhooks/{id}/deliveries", g.authed(g.webhookDeliveries))
	route(http.MethodPost, "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", g.authed(g.retryWebhookDelivery))
}

// webhookAnswer is an endpoint as agents see it; Secret only on creation
// and rotation.
type webhookAnswer struct {
	ID                  string     `json:"id"`
	URL                 string     `json:"url"`
	Events              []string   `json:"events"`
	Enabled             bool       `json:"enabled"`
	DisabledReason      string     `json:"disabled_reason,omitempty"`
	PreviousSecretUntil *time.Time `json:"previous_secret_valid_until,omitempty"`
	Secret              string     `json:"secret,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
}

func webhookOut(e brokerclient.WebhookEndpoint) webhookAnswer {
	events := e.Events
	if events == nil {
		events = []string{}
	}
	return webhookAnswer{ID: e.ID, URL: e.URL, Events: events, Enabled: e.Enabled, DisabledReason: e.DisabledReason,
		PreviousSecretUntil: e.PreviousSecretUntil, Secret: e.Secret, CreatedAt: e.CreatedAt.UTC()}
}

type createWebhookInput struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

func (g *Gateway) createWebhook(w http.ResponseWriter, r *http.Request, c Caller) {
	var in createWebhookInput
	if err := httpapi.DecodeJSON(w, r, &in, maxRequestBody); err != nil {
		g.writeError(w, r, err)
		return
	}
	if in.URL == "" {
		g.writeError(w, r, httpapi.BadRequest("url is required"))
		return
	}
	e, err := g.svc.broker.CreateWebhook(r.Context(), c.Name, in.URL, in.Events)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, webhookOut(e))
}

func (g *Gateway) listWebhooks(w http.ResponseWriter, r *http.Request, c Caller) {
	es, err := g.svc.broker.ListWebhooks(r.Context(), c.Name)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	out := make([]webhookAnswer, 0, len(es))
	for _, e := range es {
		e.Secret = "" // never listed
		out = append(out, webhookOut(e))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

func (g *Gateway) deleteWebhook(w http.ResponseWriter, r *http.Request, c Caller) {
	if err := g.svc.broker.DeleteWebhook(r.Context(), c.Name, r.PathValue("id")); err != nil {
		g.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, c Caller) {
	e, err := g.svc.broker.RotateWebhookSecret(r.Context(), c.Name, r.PathValue("id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, webhookOut(e))
}

// deliveryAnswer is one entry of the deliveries log.
type deliveryAnswer struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	ConnectionID   string     `json:"connection_id"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastAttemptAt  *time.Time `json:"last_attempt_at,omitempty"`
	ResponseStatus int        `json:"response_status,omitempty"`
	LatencyMS      int64      `json:"latency_ms"`
	Error          string     `json:"error,omitempty"`
	NextAttemptAt  *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

func deliveryOut(d brokerclient.WebhookDelivery) deliveryAnswer {
	return deliveryAnswer{ID: d.ID, EventID: d.EventID, EventType: d.EventType, ConnectionID: d.ConnectionID,
		Status: d.Status, Attempts: d.Attempts, LastAttemptAt: d.LastAttemptAt, ResponseStatus: d.ResponseStatus,
		LatencyMS: d.LatencyMS, Error: d.Error, NextAttemptAt: d.NextAttemptAt, DeliveredAt: d.DeliveredAt, CreatedAt: d.CreatedAt.UTC()}
}

func (g *Gateway) webhookDeliveries(w http.ResponseWriter, r *http.Request, c Caller) {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			g.writeError(w, r, httpapi.BadRequest("limit must be an integer from 1 to 500"))
			return
		}
		limit = n
	}
	ds, err := g.svc.broker.WebhookDeliveries(r.Context(), c.Name, r.PathValue("id"), limit)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	out := make([]deliveryAnswer, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryOut(d))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (g *Gateway) retryWebhookDelivery(w http.ResponseWriter, r *http.Request, c Caller) {
	d, err := g.svc.broker.RetryWebhookDelivery(r.Context(), c.Name, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, deliveryOut(d))
}
