package webhook

import (
	"encoding/json"
	"fmt"
	"time"
)

// EventType names a connection lifecycle event.
type EventType string

// The lifecycle events of a connection.
const (
	// ConnectionActive: consent completed, also after a reconnect.
	ConnectionActive EventType = "connection.active"
	// ConnectionFailed: consent denied, or the code exchange or id_token
	// verification failed.
	ConnectionFailed EventType = "connection.failed"
	// ConnectionReauthRequired: a refresh hit a permanent error
	// (invalid_grant or a provider's equivalent); the user must consent
	// again.
	ConnectionReauthRequired EventType = "connection.reauth_required"
	// ConnectionRecovered: a connection that had transient refresh
	// failures refreshed again.
	ConnectionRecovered EventType = "connection.recovered"
	// ConnectionDeleted: the connection was deleted.
	ConnectionDeleted EventType = "connection.deleted"
	// ConnectionScopesChanged: the connection's granted scopes changed.
	ConnectionScopesChanged EventType = "connection.scopes_changed"
)

// EventTypes lists every event type, in a fixed order.
func EventTypes() []EventType {
	return []EventType{
		ConnectionActive, ConnectionFailed, ConnectionReauthRequired,
		ConnectionRecovered, ConnectionDeleted, ConnectionScopesChanged,
	}
}

// Valid reports whether t is one of the event types above.
func (t EventType) Valid() bool {
	for _, known := range EventTypes() {
		if t == known {
			return true
		}
	}
	return false
}

// Connection is the data of a lifecycle event: who the connection belongs
// to and where it stands. It deliberately has no field that could hold a
// token, authorization code, state, verifier or secret.
type Connection struct {
	ConnectionID string `json:"connection_id"`
	// WorkspaceID and ClientName name the agent (gateway client) that
	// owns the connection.
	WorkspaceID  string `json:"workspace_id"`
	ClientName   string `json:"client_name"`
	UserID       string `json:"user_id"`
	ProviderName string `json:"provider_name"`
	// Status is the connection's status after the event (pending, active,
	// failed, expired, revoked).
	Status string `json:"status"`
	// Reason is the status reason code, e.g. invalid_grant, access_denied,
	// consent_expired, deleted; empty when there is none.
	Reason    string    `json:"reason,omitempty"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Event is the JSON body of a webhook message.
type Event struct {
	Type EventType `json:"type"`
	// Timestamp is when the event happened (not when it is delivered).
	Timestamp time.Time  `json:"timestamp"`
	Data      Connection `json:"data"`
}

// Encode returns the JSON body of ev. Times are written in UTC with
// RFC 3339 precision to the nanosecond; Scopes is never null.
func Encode(ev Event) ([]byte, error) {
	if !ev.Type.Valid() {
		return nil, fmt.Errorf("webhook: unknown event type %q", ev.Type)
	}
	if ev.Timestamp.IsZero() {
		return nil, fmt.Errorf("webhook: event %s without a timestamp", ev.Type)
	}
	if ev.Data.ConnectionID == "" {
		return nil, fmt.Errorf("webhook: event %s without a connection id", ev.Type)
	}
	ev.Timestamp = ev.Timestamp.UTC()
	if !ev.Data.CreatedAt.IsZero() {
		ev.Data.CreatedAt = ev.Data.CreatedAt.UTC()
	}
	if !ev.Data.UpdatedAt.IsZero() {
		ev.Data.UpdatedAt = ev.Data.UpdatedAt.UTC()
	}
	if ev.Data.Scopes == nil {
		ev.Data.Scopes = []string{}
	}
	return json.Marshal(ev)
}
