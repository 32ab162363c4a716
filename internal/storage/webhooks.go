package storage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"time"
)

// WebhookStore keeps webhook endpoints, the lifecycle events of
// connections (the outbox) and their deliveries to endpoints.
//
// The backends write lifecycle events themselves, inside the transaction of
// UpdateConnection, FinishStepUp and DeleteConnection, whenever
// ClassifyLifecycle finds one; in the same statement batch they add one
// delivery per endpoint that should receive it (the connection's owner's
// endpoints and the global ones, disabled ones included so that a
// re-enabled endpoint replays its backlog). So an event exists if and only
// if the state change committed.
type WebhookStore interface {
	// CreateWebhookEndpoint stores e; a taken id is ErrAlreadyExists.
	CreateWebhookEndpoint(ctx context.Context, e WebhookEndpoint) error
	GetWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error)
	// ListWebhookEndpoints returns the endpoints matching f, oldest first.
	ListWebhookEndpoints(ctx context.Context, f WebhookEndpointFilter) ([]WebhookEndpoint, error)
	// UpdateWebhookEndpoint loads the endpoint under a row lock, calls fn
	// and writes back what fn returns (ID, Owner and CreatedAt are kept).
	// When the update enables a disabled endpoint, its pending deliveries
	// become due at once (at the returned endpoint's UpdatedAt) with their
	// attempt counts reset: the backlog is replayed.
	UpdateWebhookEndpoint(ctx context.Context, id string, fn func(WebhookEndpoint) (WebhookEndpoint, error)) (WebhookEndpoint, error)
	// DeleteWebhookEndpoint removes the endpoint and its deliveries.
	DeleteWebhookEndpoint(ctx context.Context, id string) error

	// ListLifecycleEvents returns the connection's events in sequence
	// order.
	ListLifecycleEvents(ctx context.Context, connectionID string) ([]LifecycleEvent, error)

	// ClaimWebhookDeliveries leases up to limit due deliveries to owner
	// until leaseUntil and returns them with their event and endpoint.
	// A delivery is due when it is pending, its NextAttemptAt is not after
	// now, its lease (if any) ran out, its endpoint is enabled, and no
	// delivery of an earlier event of the same connection to the same
	// endpoint is still pending: per connection and endpoint, events go out
	// in order. Replicas claim disjoint sets (FOR UPDATE SKIP LOCKED on
	// PostgreSQL; the single writer on SQLite).
	ClaimWebhookDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]ClaimedDelivery, error)
	// FinishWebhookAttempt records one attempt of a delivery claimed by
	// a.Owner (a lease taken over by another claimer is ErrNotFound and
	// nothing is written) and, through the endpoint's FailingSince,
	// disables the endpoint when it has failed since before
	// a.DisableIfFailingSince. It reports whether this call disabled it.
	FinishWebhookAttempt(ctx context.Context, id string, a WebhookAttempt) (disabled bool, err error)
	// ListWebhookDeliveries returns the endpoint's deliveries, newest event
	// first, at most limit (0 means 100).
	ListWebhookDeliveries(ctx context.Context, endpointID string, limit int) ([]WebhookDelivery, error)
	// RetryWebhookDelivery makes a delivery of that endpoint pending and
	// due at now again, whatever its state; ErrNotFound when the endpoint
	// has no such delivery.
	RetryWebhookDelivery(ctx context.Context, endpointID, id string, now time.Time) (WebhookDelivery, error)
	// WebhookQueueStats counts the pending deliveries of enabled endpoints
	// and returns the creation time of the oldest (zero when none).
	WebhookQueueStats(ctx context.Context) (depth int64, oldest time.Time, err error)
}

// LifecycleType names a connection lifecycle event; the values are the
// webhook event types.
type LifecycleType string

// The lifecycle events ClassifyLifecycle finds.
const (
	LifecycleActive         LifecycleType = "connection.active"
	LifecycleFailed         LifecycleType = "connection.failed"
	LifecycleReauthRequired LifecycleType = "connection.reauth_required"
	LifecycleRecovered      LifecycleType = "connection.recovered"
	LifecycleDeleted        LifecycleType = "connection.deleted"
	LifecycleScopesChanged  LifecycleType = "connection.scopes_changed"
)

// ClassifyLifecycle returns the lifecycle events of a connection going from
// prev to next: prev nil for a new row, next nil for a deleted one. It is
// the one definition of which state change is worth telling an agent.
//
//   - active: the status became active (consent completed or reconnected).
//   - failed: the status became failed (denied, exchange failed, expired
//     while pending).
//   - reauth_required: an active connection became expired (a refresh hit a
//     permanent error).
//   - recovered: an active connection that had a refresh error class
//     stored refreshed again (the class was cleared, LastRefreshAt moved).
//   - scopes_changed: an active connection stayed active with another set
//     of scopes (a completed step-up).
//   - deleted: the row was deleted.
//
// Moves to pending, exchanging or revoked (the first step of a deletion)
// are not events.
func ClassifyLifecycle(prev, next *Connection) []LifecycleType {
	switch {
	case next == nil && prev == nil:
		return nil
	case next == nil:
		return []LifecycleType{LifecycleDeleted}
	case prev == nil:
		switch next.Status {
		case StatusActive:
			return []LifecycleType{LifecycleActive}
		case StatusFailed:
			return []LifecycleType{LifecycleFailed}
		}
		return nil
	}
	if prev.Status != next.Status {
		switch {
		case next.Status == StatusActive:
			return []LifecycleType{LifecycleActive}
		case next.Status == StatusFailed:
			return []LifecycleType{LifecycleFailed}
		case next.Status == StatusExpired && prev.Status == StatusActive:
			return []LifecycleType{LifecycleReauthRequired}
		}
		return nil
	}
	if next.Status != StatusActive {
		return nil
	}
	var out []LifecycleType
	if prev.LastErrorClass != "" && next.LastErrorClass == "" && next.LastRefreshAt.After(prev.LastRefreshAt) {
		out = append(out, LifecycleRecovered)
	}
	if !sameSet(prev.Scopes, next.Scopes) {
		out = append(out, LifecycleScopesChanged)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// LifecycleEvent is one row of the outbox: what happened to a connection
// and where it stood afterwards. It never holds a token, code or secret.
type LifecycleEvent struct {
	// ID is the webhook message id ("msg_…"), the same on every delivery
	// of the event to every endpoint.
	ID           string
	ConnectionID string
	// Seq numbers the connection's events from 1, in commit order.
	Seq          int64
	Type         LifecycleType
	WorkspaceID  string
	ClientName   string
	UserID       string
	ProviderName string
	Status       ConnectionStatus
	Reason       string
	Scopes       []string
	// OccurredAt is when the change was written; ConnectionCreatedAt and
	// ConnectionUpdatedAt are the connection's own times.
	OccurredAt          time.Time
	ConnectionCreatedAt time.Time
	ConnectionUpdatedAt time.Time
}

// NewLifecycleEvent builds the event of type typ for connection c (as it
// stands after the change), with a fresh message id and seq left for the
// backend to assign.
func NewLifecycleEvent(typ LifecycleType, c Connection, at time.Time) LifecycleEvent {
	return LifecycleEvent{
		ID: NewWebhookID("msg_"), ConnectionID: c.ID, Type: typ, WorkspaceID: c.WorkspaceID,
		ClientName: c.ClientName, UserID: c.UserID, ProviderName: c.ProviderName, Status: c.Status,
		Reason: c.StatusReason, Scopes: slices.Clone(c.Scopes), OccurredAt: at.UTC(),
		ConnectionCreatedAt: c.CreatedAt, ConnectionUpdatedAt: c.UpdatedAt,
	}
}

// EventTime is the time of an event about c (as it stands after the
// change, or before a deletion): its UpdatedAt, set by the caller's clock.
// The broker marks a connection revoked just before deleting it, so a
// deletion carries that time. Only a row without one falls back to the
// wall clock.
func EventTime(c Connection) time.Time {
	if !c.UpdatedAt.IsZero() {
		return c.UpdatedAt.UTC()
	}
	return time.Now().UTC()
}

// NewWebhookID returns prefix + 16 random bytes in unpadded base64url, the
// shape of a Standard Webhooks message id.
func NewWebhookID(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand aborts the process instead)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Matches reports whether endpoint e should receive events of connections
// owned by clientName of type typ.
func (e WebhookEndpoint) Matches(clientName string, typ LifecycleType) bool {
	if e.Owner != "" && e.Owner != clientName {
		return false
	}
	return len(e.Events) == 0 || slices.Contains(e.Events, string(typ))
}

// WebhookEndpoint is where lifecycle events are POSTed.
type WebhookEndpoint struct {
	ID string
	// Owner is the gateway client (agent) name whose connections' events
	// the endpoint receives; "" for an operator's global endpoint, which
	// receives every connection's events.
	Owner string
	URL   string
	// Events filters by type; empty means every type.
	Events []string
	// Secret is the vault sealing of the "whsec_…" secret, with the
	// endpoint id as additional data (owned by the delivery package).
	Secret []byte
	// PreviousSecret, sealed the same way, still signs messages until
	// PreviousSecretUntil, so receivers can rotate without losing events.
	PreviousSecret      []byte
	PreviousSecretUntil time.Time
	Enabled             bool
	// DisabledReason says why it was disabled ("failing", "operator").
	DisabledReason string
	// FailingSince is the first failed attempt after the last success;
	// zero while deliveries succeed.
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// WebhookEndpointFilter narrows ListWebhookEndpoints.
type WebhookEndpointFilter struct {
	// Owner keeps one owner's endpoints ("" is the global ones) unless
	// AnyOwner is set.
	Owner    string
	AnyOwner bool
}

// WebhookDeliveryState is where a delivery stands.
type WebhookDeliveryState string

const (
	DeliveryPending   WebhookDeliveryState = "pending"
	DeliveryDelivered WebhookDeliveryState = "delivered"
	DeliveryFailed    WebhookDeliveryState = "failed" // gave up after the last attempt
)

// WebhookDelivery is one event on its way to one endpoint, with its last
// attempt.
type WebhookDelivery struct {
	ID            string
	EndpointID    string
	EventID       string
	EventType     LifecycleType
	ConnectionID  string
	Seq           int64
	State         WebhookDeliveryState
	Attempts      int
	NextAttemptAt time.Time // zero once delivered or failed
	LastAttemptAt time.Time
	// LastStatusCode is the HTTP status of the last attempt, 0 when it got
	// no answer; LastError a short class ("timeout", "connect",
	// "blocked_address", "status"), never a URL or body.
	LastStatusCode int
	LastLatency    time.Duration
	LastError      string
	DeliveredAt    time.Time
	CreatedAt      time.Time
}

// ClaimedDelivery is a leased delivery with what sending it needs.
type ClaimedDelivery struct {
	Delivery WebhookDelivery
	Event    LifecycleEvent
	Endpoint WebhookEndpoint
}

// WebhookAttempt is the outcome of one delivery attempt.
type WebhookAttempt struct {
	Owner      string // the claimer, as given to ClaimWebhookDeliveries
	At         time.Time
	Latency    time.Duration
	StatusCode int
	Error      string
	// Delivered: the endpoint answered 2xx. Otherwise GiveUp ends the
	// delivery as failed, else it is retried at NextAttemptAt.
	Delivered     bool
	GiveUp        bool
	NextAttemptAt time.Time
	// DisableIfFailingSince disables the endpoint when this attempt failed
	// and the endpoint has been failing since before it (zero: never).
	DisableIfFailingSince time.Time
}
