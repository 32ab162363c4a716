package storage

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors every backend returns (possibly wrapped).
var (
	// ErrNotFound: no row with that id (or name).
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a unique id, name or alias is taken.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrUnavailable: the database cannot be reached or is shutting down or
	// starting up; the same call may succeed later.
	ErrUnavailable = errors.New("storage: database unavailable")
	// ErrLimitReached: the write would go over a per-client cap; nothing
	// was written.
	ErrLimitReached = errors.New("storage: limit reached")
)

// Storage is the one persistence port of the broker. Implementations must be
// safe for concurrent use by many goroutines and, for PostgreSQL, by many
// processes sharing one database.
//
// Update methods take a closure that the backend runs inside a transaction
// holding a write lock on the row, so a read-check-write done in the closure
// is atomic (compare-and-swap without leaking transactions to callers). If the
// closure returns an error, nothing is written and that error is returned
// unchanged (errors.Is works on it).
type Storage interface {
	// Providers. Names and aliases are stored lower-case and are unique
	// together: an alias may not equal another provider's name or alias.
	CreateProvider(ctx context.Context, p Provider) error
	GetProvider(ctx context.Context, id string) (Provider, error)
	// GetProviderByName matches name or any alias, case-insensitively.
	GetProviderByName(ctx context.Context, name string) (Provider, error)
	// ListProviders returns all providers ordered by name.
	ListProviders(ctx context.Context) ([]Provider, error)
	// UpdateProvider replaces the provider (including its aliases) with what
	// fn returns. ID and CreatedAt are kept; UpdatedAt is set by the caller.
	UpdateProvider(ctx context.Context, id string, fn func(Provider) (Provider, error)) (Provider, error)
	// DeleteProvider removes the provider and its aliases. Connections that
	// refer to it are kept (their provider_id dangles on purpose: audit).
	DeleteProvider(ctx context.Context, id string) error

	// Connections.
	CreateConnection(ctx context.Context, c Connection) error
	// CreatePendingConnection stores c with Version 1 unless c.ClientName
	// already has maxPending pending connections whose ExpiresAt is after
	// c.CreatedAt; then it writes nothing and returns ErrLimitReached. The
	// count and the insert are atomic, across processes too: concurrent
	// calls for one client never leave more than maxPending.
	CreatePendingConnection(ctx context.Context, c Connection, maxPending int) error
	// PurgeConnections deletes, with their tokens, the connections that
	// failed before ever being active (denied, expired or broken consents)
	// and were last updated before before, and returns how many. A
	// connection that was once active is never purged.
	PurgeConnections(ctx context.Context, before time.Time) (int64, error)
	GetConnection(ctx context.Context, id string) (Connection, error)
	ListConnections(ctx context.Context, f ConnectionFilter) ([]Connection, error)
	// UpdateConnection loads the connection and its token (nil when none)
	// under a row lock, calls fn, and writes back the connection fn returns
	// with Version incremented by one, plus the token change fn asks for,
	// all in one transaction.
	UpdateConnection(ctx context.Context, id string, fn func(Connection, *Token) (Connection, TokenChange, error)) (Connection, error)
	// UpdateLapsedConfirmations runs fn, as UpdateConnection does (row
	// lock, token change and lifecycle event in one transaction per
	// connection), on up to limit (0 or less means 100) connections
	// awaiting confirmation whose ConfirmationExpiresAt is at or before
	// now, soonest lapsed first, and returns the connections written. Each
	// is re-checked under its lock and left out when it is no longer
	// awaiting or no longer lapsed, and PostgreSQL skips a row another
	// transaction holds locked rather than wait for it, so concurrent
	// calls, from any process, never run fn twice on one lapse. An error
	// from fn stops the pass: it is returned unchanged with the
	// connections written before it.
	UpdateLapsedConfirmations(ctx context.Context, now time.Time, limit int, fn func(Connection, *Token) (Connection, TokenChange, error)) ([]Connection, error)
	// DueForRefresh returns the ids of active connections that have a token
	// row and are due by f (see DueFilter). A connection whose lease is held
	// (RefreshLeaseUntil after f.Now), that is backing off (NextRefreshAt
	// after f.Now) or that a pass claimed until after f.Now is left out.
	// Soonest expiry first, unknown expiries last, ties by id; at most
	// f.Limit (0 or less means 100). With f.ClaimUntil set, the connections
	// returned are claimed until then, atomically: concurrent calls, from
	// any process, never return the same connection while its claim holds
	// (PostgreSQL skips rows another claimer holds locked; SQLite's single
	// writer claims one call at a time).
	DueForRefresh(ctx context.Context, f DueFilter) ([]string, error)
	// TakeProviderCall counts one call to a provider's token endpoint in
	// the window starting at c.WindowStart if the window has room: fewer
	// than c.Limit calls counted (c.ThrottledLimit while the provider is
	// throttled past c.Now). A later window starts the count again. It
	// returns whether the call was counted and how many the window has
	// left for this kind of caller. Atomic across processes.
	TakeProviderCall(ctx context.Context, c ProviderCall) (taken bool, left int, err error)
	// ThrottleProvider keeps the provider throttled until until (never
	// shortening an earlier throttle).
	ThrottleProvider(ctx context.Context, providerID string, until time.Time) error
	// ReleaseClaims ends the claims DueForRefresh took on ids (a pass is
	// done with them); unknown or unclaimed ids are ignored.
	ReleaseClaims(ctx context.Context, ids []string) error
	// RecordReads moves each connection's last read time forward to the
	// given time (never back). Unknown ids are ignored; a backend may skip
	// a row another transaction holds locked rather than wait for it (the
	// mark is advisory: it only decides what is refreshed ahead).
	RecordReads(ctx context.Context, reads []Read) error
	// ListConnectionIDs pages through every connection id in ascending
	// order: ids greater than after, at most limit (0 or less means 100).
	// Maintenance (key rotation) walks the table with it.
	ListConnectionIDs(ctx context.Context, after string, limit int) ([]string, error)
	// DeleteConnection removes the connection and its token.
	DeleteConnection(ctx context.Context, id string) error

	// GetConnectionToken returns the connection and its token (nil when it
	// has none) in one round trip: the token read's hot path.
	GetConnectionToken(ctx context.Context, id string) (Connection, *Token, error)
	// GetToken returns the connection's stored token.
	GetToken(ctx context.Context, connectionID string) (Token, error)
	// ConnectionVersions returns the Version of each of the named
	// connections that exists, in one query; ids that name none are left
	// out. Every change to a connection or its token row goes through
	// UpdateConnection (which grows Version) or deletes the row, so an
	// unchanged version means the connection and its token are as they
	// were: what a replica's token cache (internal/tokencache) checks its
	// rows against.
	ConnectionVersions(ctx context.Context, ids []string) (map[string]int64, error)
	// ConnectionOwners returns the agent (client name) and provider of each
	// of the named connections that exists, in one query; ids that name
	// none are left out. The broker checks a gateway's batch of API proxy
	// calls against it without one read per connection.
	ConnectionOwners(ctx context.Context, ids []string) (map[string]ConnectionOwner, error)

	// Audit trail, append-only.
	// AppendAudit appends the events in one transaction (all or none).
	AppendAudit(ctx context.Context, events ...AuditEvent) error
	// ListAudit returns events newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// PruneAudit deletes events older than before (retention) and returns
	// how many it deleted.
	PruneAudit(ctx context.Context, before time.Time) (int64, error)

	// Step-ups of active connections.
	StepUpStore
	// Revocations still to make at providers.
	RevocationStore
	// Device authorization grants being polled.
	DeviceStore

	// Webhook endpoints, lifecycle events and deliveries.
	WebhookStore

	// Ping reports whether the database answers.
	// MCP clients: one OAuth client per authorization server, reused by
	// every MCP server and connection it protects. CreateMCPClient fails
	// with ErrAlreadyExists when the issuer has one (a concurrent
	// registration lost: reuse the stored one); PutMCPClient replaces
	// (an operator's pre-registration).
	CreateMCPClient(ctx context.Context, c MCPClient) error
	PutMCPClient(ctx context.Context, c MCPClient) error
	GetMCPClient(ctx context.Context, issuer string) (MCPClient, error)
	ListMCPClients(ctx context.Context) ([]MCPClient, error)
	DeleteMCPClient(ctx context.Context, issuer string) error

	Ping(ctx context.Context) error
	Close() error
}

// Provider is a registered OAuth/OIDC provider. Config is the provider
// profile without its secret, as JSON owned by package provider; the storage
// layer does not look inside it. ClientSecret is sealed by the vault with the
// provider id (and, from AAD version 2, a digest of its security-relevant
// configuration) as associated data.
type Provider struct {
	ID           string
	Name         string   // canonical, lower-case
	Aliases      []string // lower-case, without Name
	Config       []byte   // JSON
	ClientSecret []byte   // ciphertext, may be empty
	// SecretAADVersion says which additional data ClientSecret was sealed
	// with (owned by package registry; 0 and 1 are the legacy form).
	SecretAADVersion int
	// Endpoints are the endpoints an operator confirmed, as JSON owned by
	// package registry; nil when none were recorded.
	Endpoints []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConnectionStatus is the life-cycle state of a connection.
type ConnectionStatus string

const (
	StatusPending    ConnectionStatus = "pending"    // consent URL handed out
	StatusExchanging ConnectionStatus = "exchanging" // callback accepted, code exchange running
	StatusActive     ConnectionStatus = "active"     // token stored
	// StatusAwaitingConfirmation: the code was exchanged and the token is
	// stored sealed, but the application has not yet confirmed that its
	// signed-in user is the one who consented (package confirm). No token
	// is served in this state.
	StatusAwaitingConfirmation ConnectionStatus = "awaiting_confirmation"
	StatusFailed               ConnectionStatus = "failed"  // consent denied, exchange or verification failed, expired while pending
	StatusExpired              ConnectionStatus = "expired" // refresh no longer possible: needs re-consent
	StatusRevoked              ConnectionStatus = "revoked"
)

// Connection is one user's link to one provider.
type Connection struct {
	ID           string
	WorkspaceID  string
	UserID       string
	ClientName   string // the gateway client (agent) that requested it; "" for direct broker use
	ProviderID   string
	ProviderName string
	Scopes       []string
	ReturnURL    string
	// Metadata holds one JSON value per key, kept byte for byte as given
	// (package connmeta checks and compacts it before it gets here).
	Metadata map[string]json.RawMessage
	Status   ConnectionStatus
	// StatusReason is a short machine-readable reason for failed/expired
	// states (e.g. "access_denied", "invalid_id_token"). Never a secret.
	StatusReason string
	// Nonce is the OIDC nonce bound into the state (empty without openid).
	Nonce string
	// PKCEVerifier is the sealed code_verifier (vault AAD: connection id);
	// emptied once the code is exchanged.
	PKCEVerifier []byte
	// Verified identity from the id_token.
	Subject string
	Email   string
	Issuer  string

	// Lifecycle bookkeeping (refresh).
	LastRefreshAt  time.Time // zero if never
	NextRefreshAt  time.Time // zero if none planned; after a transient failure, the earliest retry
	LastErrorClass string
	// RefreshLeaseUntil and RefreshLeaseOwner are the cross-process refresh
	// lock: a broker claims it (in UpdateConnection) before calling the
	// provider and clears it when done. A holder that crashes leaves a lease
	// that simply runs out, so no connection stays stuck.
	RefreshLeaseUntil time.Time
	RefreshLeaseOwner string

	CreatedAt time.Time
	UpdatedAt time.Time
	// ExpiresAt bounds the pending phase: after it, a callback is refused.
	ExpiresAt time.Time
	// Version starts at 1 and grows by one with every UpdateConnection.
	Version int64

	// ConfirmURL is where the browser goes after a successful exchange
	// when the agent requires its user's confirmation; empty when none is
	// required (package confirm).
	ConfirmURL string
	// ConfirmationHash is the digest of the one confirmation value that is
	// valid now (never the value itself); empty when none is.
	ConfirmationHash string
	// ConfirmationExpiresAt bounds the confirmation; zero when none runs.
	ConfirmationExpiresAt time.Time
	// ExpectedIdentity is who the agent said should consent, as JSON owned
	// by package expectid; empty when it said nothing.
	ExpectedIdentity string
}

// ConnectionFilter narrows ListConnections; zero fields match everything.
type ConnectionFilter struct {
	WorkspaceID string
	UserID      string
	ClientName  string
	ProviderID  string
	// ProviderName matches the provider name the connection was made
	// under (Connection.ProviderName).
	ProviderName string
	Status       ConnectionStatus
	// AnyStatus, when not empty, keeps the connections in one of these
	// statuses (on top of Status).
	AnyStatus []ConnectionStatus
	// After, when set, keeps only the connections listed after it in the
	// CreatedAt-then-ID order: a keyset page cursor, stable under inserts.
	After *ConnectionKey
	Limit int // 0 means 100
}

// DueFilter selects the connections the refresh-ahead worker works on.
// A connection is due for either of two reasons:
//
//   - refresh ahead: its token expires (non-zero ExpiresAt) before
//     ExpiringBefore and it was last read (created, when never read) at or
//     after ReadSince; a zero ExpiringBefore switches this reason off, a zero
//     ReadSince takes every connection however long unread;
//   - keep-alive: its provider is listed in KeepAlive and its LastRefreshAt
//     (CreatedAt when never refreshed) is before that entry's
//     UntouchedBefore.
type DueFilter struct {
	Now            time.Time
	ExpiringBefore time.Time
	ReadSince      time.Time
	KeepAlive      []KeepAlive
	Limit          int
	// ClaimUntil, when set, claims the connections returned until then.
	ClaimUntil time.Time
}

// KeepAlive asks for the connections of one provider left unrefreshed
// since before UntouchedBefore, so that their refresh tokens are used
// before the provider lets them lapse.
type KeepAlive struct {
	ProviderID      string
	UntouchedBefore time.Time
}

// ProviderCall asks to count one call to a provider's token endpoint.
type ProviderCall struct {
	ProviderID     string
	Now            time.Time
	WindowStart    time.Time
	Limit          int
	ThrottledLimit int
}

// Read says a connection's token was read at At.
type Read struct {
	ConnectionID string
	At           time.Time
}

// ConnectionKey is a connection's place in the listing order.
type ConnectionKey struct {
	CreatedAt time.Time
	ID        string
}

// Token is the stored token set of a connection. Ciphertext is the vault
// sealing of the JSON token set, with the connection id as associated data.
// The plain fields hold only what is not secret.
type Token struct {
	ConnectionID string
	Ciphertext   []byte
	// AADVersion says which additional data Ciphertext was sealed with
	// (owned by package tokenset; 0 and 1 are the legacy form).
	AADVersion int
	// ExpiresAt is when the access token expires; zero when unknown.
	ExpiresAt time.Time
	// ExpirySource says how ExpiresAt was obtained: "expires_in",
	// "jwt_exp", "provider_default" or "unknown".
	ExpirySource string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TokenChange says what UpdateConnection does with the token row.
// The zero value leaves it alone.
type TokenChange struct {
	Put    *Token // insert or replace
	Delete bool
}

// AuditEvent is one append-only audit record. It never holds a token, code,
// verifier or secret.
type AuditEvent struct {
	ID           int64 // assigned by the backend
	Time         time.Time
	Type         string // e.g. "consent.created", "callback.succeeded"
	ConnectionID string
	ProviderID   string
	Actor        string
	ClientIP     string
	UserAgent    string
	Detail       map[string]string
}

// AuditFilter narrows ListAudit; zero fields match everything.
type AuditFilter struct {
	ConnectionID string
	Since        time.Time
	Limit        int // 0 means 100
}

// MCPClient is the broker's OAuth client at one authorization server of
// MCP servers.
type MCPClient struct {
	// Issuer is the authorization server's identifier: the key.
	Issuer   string
	ClientID string
	// Credentials are sealed (vault, AAD tokenset.MCPClientAAD): the
	// client secret and, for private_key_jwt, the private key. May be
	// empty for a public client.
	Credentials []byte
	// AuthMethod is the token endpoint authentication method.
	AuthMethod string
	// Source says how the client came to be: "preregistered" (by an
	// operator), "metadata_document" (the broker's Client ID Metadata
	// Document) or "dynamic" (RFC 7591 registration).
	Source    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConnectionOwner is who a connection belongs to (ConnectionOwners).
type ConnectionOwner struct {
	ClientName string
	ProviderID string
}
