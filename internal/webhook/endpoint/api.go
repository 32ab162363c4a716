package endpoint

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/netguard"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/webhook"
)

// Routes hands the webhook API routes to handle, which mounts each behind
// the broker's guards and error writer.
func (m *Manager) Routes(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error)) {
	handle("POST /webhooks", m.apiCreate)
	handle("GET /webhooks", m.apiList)
	handle("GET /webhooks/{id}", m.apiGet)
	handle("DELETE /webhooks/{id}", m.apiDelete)
	handle("POST /webhooks/{id}/rotate-secret", m.apiRotate)
	handle("POST /webhooks/{id}/enable", m.apiEnable)
	handle("GET /webhooks/{id}/deliveries", m.apiDeliveries)
	handle("POST /webhooks/{id}/deliveries/{did}/retry", m.apiRetry)
}

// scope reads who is calling. A gateway call (httpapi.GatewayHeader) must
// name its agent in client_name; a direct call without one is the
// operator's.
func scope(r *http.Request) (Scope, error) {
	owner := r.URL.Query().Get("client_name")
	if owner != "" {
		return Scope{Owner: owner}, nil
	}
	if r.Header.Get(httpapi.GatewayHeader) != "" {
		return Scope{}, &httpapi.Error{Status: http.StatusForbidden, Code: httpapi.CodeOwnerRequired,
			Message: "a gateway call must name the endpoint's owner (client_name); the broker serves no gateway call without one"}
	}
	return Scope{Operator: true}, nil
}

// View is an endpoint as the API shows it. Secret is set only in the
// answers that create or rotate it.
type View struct {
	ID                  string     `json:"id"`
	ClientName          string     `json:"client_name"`
	URL                 string     `json:"url"`
	Events              []string   `json:"events"`
	Enabled             bool       `json:"enabled"`
	DisabledReason      string     `json:"disabled_reason,omitempty"`
	FailingSince        *time.Time `json:"failing_since,omitempty"`
	PreviousSecretUntil *time.Time `json:"previous_secret_valid_until,omitempty"`
	Secret              string     `json:"secret,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func view(e storage.WebhookEndpoint, now time.Time, secret *webhook.Secret) View {
	v := View{ID: e.ID, ClientName: e.Owner, URL: e.URL, Events: e.Events, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, FailingSince: timePtr(e.FailingSince), CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
	if v.Events == nil {
		v.Events = []string{}
	}
	if len(e.PreviousSecret) > 0 && now.Before(e.PreviousSecretUntil) {
		v.PreviousSecretUntil = timePtr(e.PreviousSecretUntil)
	}
	if secret != nil {
		v.Secret = secret.Reveal()
	}
	return v
}

// DeliveryView is one delivery in the deliveries log.
type DeliveryView struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	ConnectionID   string     `json:"connection_id"`
	Sequence       int64      `json:"sequence"`
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

func deliveryView(d storage.WebhookDelivery) DeliveryView {
	return DeliveryView{ID: d.ID, EventID: d.EventID, EventType: string(d.EventType), ConnectionID: d.ConnectionID,
		Sequence: d.Seq, Status: string(d.State), Attempts: d.Attempts, LastAttemptAt: timePtr(d.LastAttemptAt),
		ResponseStatus: d.LastStatusCode, LatencyMS: d.LastLatency.Milliseconds(), Error: d.LastError,
		NextAttemptAt: timePtr(d.NextAttemptAt), DeliveredAt: timePtr(d.DeliveredAt), CreatedAt: d.CreatedAt}
}

// apiErr maps Manager errors to the envelope; anything else passes on
// (storage outages become 503s in the broker's writer).
func apiErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return httpapi.NotFound("webhook endpoint")
	case errors.Is(err, ErrBadURL) && errors.Is(err, netguard.ErrBlocked):
		// Never which address the name resolved to: an agent must not be
		// able to map the broker's internal DNS through this answer.
		return httpapi.BadRequest("url: the host must resolve only to public addresses")
	case errors.Is(err, ErrBadURL) && errors.Is(err, netguard.ErrInvalidURL):
		// The guard's reason names the problem of shape, never the URL.
		return httpapi.BadRequest("url: %v", errors.Unwrap(err))
	case errors.Is(err, ErrBadURL):
		return httpapi.BadRequest("url: the host could not be resolved")
	case errors.Is(err, ErrBadEvents):
		return httpapi.BadRequest("events: unknown event type; known: connection.active, connection.failed, connection.reauth_required, connection.recovered, connection.deleted, connection.scopes_changed")
	case errors.Is(err, ErrTooMany):
		return httpapi.Conflict("too_many_webhooks", "at most %d webhook endpoints per owner", DefaultMaxPerOwner)
	}
	return err
}

// audit records a change made through the API; the actor is the request's
// client_name (the broker's audit writer reads it), never the URL or a
// secret.
func (m *Manager) audit(r *http.Request, typ, endpointID string) {
	m.d.Audit(r, storage.AuditEvent{Type: typ, Detail: map[string]string{"endpoint_id": endpointID}})
}

type createBody struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

func (m *Manager) apiCreate(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	var body createBody
	if err := httpapi.DecodeJSON(w, r, &body, 16<<10); err != nil {
		return err
	}
	if body.URL == "" {
		return httpapi.BadRequest("url is required")
	}
	e, secret, err := m.Create(r.Context(), sc, body.URL, body.Events)
	if err != nil {
		return apiErr(err)
	}
	m.audit(r, "webhook.endpoint_created", e.ID)
	httpapi.WriteJSON(w, http.StatusCreated, view(e, m.d.Now(), &secret))
	return nil
}

func (m *Manager) apiList(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	es, err := m.List(r.Context(), sc)
	if err != nil {
		return apiErr(err)
	}
	out := make([]View, 0, len(es))
	for _, e := range es {
		out = append(out, view(e, m.d.Now(), nil))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"webhooks": out})
	return nil
}

func (m *Manager) apiGet(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	e, err := m.Get(r.Context(), sc, r.PathValue("id"))
	if err != nil {
		return apiErr(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, view(e, m.d.Now(), nil))
	return nil
}

func (m *Manager) apiDelete(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	if err := m.Delete(r.Context(), sc, r.PathValue("id")); err != nil {
		return apiErr(err)
	}
	m.audit(r, "webhook.endpoint_deleted", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (m *Manager) apiRotate(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	e, secret, err := m.RotateSecret(r.Context(), sc, r.PathValue("id"))
	if err != nil {
		return apiErr(err)
	}
	m.audit(r, "webhook.secret_rotated", e.ID)
	httpapi.WriteJSON(w, http.StatusOK, view(e, m.d.Now(), &secret))
	return nil
}

func (m *Manager) apiEnable(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	e, err := m.Enable(r.Context(), sc, r.PathValue("id"))
	if err != nil {
		return apiErr(err)
	}
	m.audit(r, "webhook.endpoint_enabled", e.ID)
	httpapi.WriteJSON(w, http.StatusOK, view(e, m.d.Now(), nil))
	return nil
}

func (m *Manager) apiDeliveries(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return httpapi.BadRequest("limit must be an integer from 1 to 500")
		}
		limit = n
	}
	ds, err := m.Deliveries(r.Context(), sc, r.PathValue("id"), limit)
	if err != nil {
		return apiErr(err)
	}
	out := make([]DeliveryView, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryView(d))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
	return nil
}

func (m *Manager) apiRetry(w http.ResponseWriter, r *http.Request) error {
	sc, err := scope(r)
	if err != nil {
		return err
	}
	d, err := m.Retry(r.Context(), sc, r.PathValue("id"), r.PathValue("did"))
	if errors.Is(err, storage.ErrNotFound) {
		return httpapi.NotFound("webhook delivery")
	} else if err != nil {
		return apiErr(err)
	}
	m.audit(r, "webhook.delivery_retried", r.PathValue("id"))
	httpapi.WriteJSON(w, http.StatusOK, deliveryView(d))
	return nil
}
