package revocation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// Options tune retries; zero fields take the defaults.
type Options struct {
	// RetryFor is how long a revocation is retried after the first
	// attempt (default 72 h).
	RetryFor time.Duration
	// MinBackoff is the wait after the first failure (default 30 s); it
	// doubles with every failure up to MaxBackoff (default 1 h).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Lease is how long a claimed revocation is kept from other replicas;
	// it must exceed one attempt (two provider calls; default 2 min).
	Lease time.Duration
	// Interval is how often Run looks for due revocations (default 10 s,
	// or MinBackoff when shorter).
	Interval time.Duration
	// Batch is how many revocations one pass claims (default 50).
	Batch int
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RetryFor, 72*time.Hour)
	def(&o.MinBackoff, 30*time.Second)
	def(&o.MaxBackoff, time.Hour)
	def(&o.Lease, 2*time.Minute)
	def(&o.Interval, min(10*time.Second, o.MinBackoff))
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
}

// Target is where and how a provider's grants are revoked. An empty URL
// means the provider has no revocation endpoint.
type Target struct {
	URL      string
	Endpoint exchange.Endpoint
}

// ErrNoProvider is what a Resolve function returns when the provider is
// gone: nothing can ever revoke its grants.
var ErrNoProvider = errors.New("revocation: provider no longer registered")

// Resolve finds the revocation target of a provider. An error other than
// ErrNoProvider is retried later.
type Resolve func(ctx context.Context, providerID string) (Target, error)

// Vault seals and opens the pending tokens.
type Vault interface {
	tokenset.Sealer
	tokenset.Opener
}

// Client revokes one token (exchange.Client).
type Client interface {
	Revoke(ctx context.Context, revocationURL string, ep exchange.Endpoint, token, tokenTypeHint string) error
}

// Deps are the revoker's collaborators.
type Deps struct {
	Store   storage.Storage
	Vault   Vault
	Client  Client
	Resolve Resolve
	// Audit records revocation.succeeded and revocation.failed.
	Audit      func(context.Context, storage.AuditEvent)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	Rand       io.Reader
}

// Revoker revokes grants and retries the ones that fail.
type Revoker struct {
	opts Options
	d    Deps
	m    *metrics
}

// New builds a revoker.
func New(opts Options, d Deps) (*Revoker, error) {
	if d.Store == nil || d.Vault == nil || d.Client == nil || d.Resolve == nil {
		return nil, errors.New("revocation: Store, Vault, Client and Resolve are required")
	}
	opts.defaults()
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Audit == nil {
		d.Audit = func(context.Context, storage.AuditEvent) {}
	}
	return &Revoker{opts: opts, d: d, m: newMetrics(d.Registerer)}, nil
}

// Tokens are what a revocation needs from a grant.
type Tokens struct {
	RefreshToken string `json:"r,omitempty"`
	AccessToken  string `json:"a,omitempty"`
}

func (t Tokens) empty() bool { return t.RefreshToken == "" && t.AccessToken == "" }

// Outcome says how far a revocation got; it goes into audit details.
type Outcome string

const (
	// Revoked: the provider confirmed the revocation.
	Revoked Outcome = "yes"
	// Pending: the attempt failed and will be retried.
	Pending Outcome = "pending"
	// NotRevoked: nothing to revoke, or the provider has no revocation
	// endpoint.
	NotRevoked Outcome = "no"
	// Failed: the provider refused in a way retrying cannot change.
	Failed Outcome = "failed"
)

// aad binds sealed tokens to their revocation row.
func aad(id string) []byte { return []byte("revocation:" + id) }

func (r *Revoker) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r.d.Rand, b[:]); err != nil {
		return "", fmt.Errorf("revocation: random id: %w", err)
	}
	return "rev_" + hex.EncodeToString(b[:]), nil
}

// record builds a pending revocation for tokens, due at due.
func (r *Revoker) record(connID, providerID string, t Tokens, due time.Time) (storage.Revocation, error) {
	id, err := r.newID()
	if err != nil {
		return storage.Revocation{}, err
	}
	plain, err := json.Marshal(t)
	if err != nil {
		return storage.Revocation{}, fmt.Errorf("revocation: encode tokens: %w", err)
	}
	sealed, err := r.d.Vault.Seal(plain, aad(id))
	if err != nil {
		return storage.Revocation{}, fmt.Errorf("revocation: seal tokens: %w", err)
	}
	now := r.d.Now().UTC()
	return storage.Revocation{ID: id, ConnectionID: connID, ProviderID: providerID, Sealed: sealed,
		NextAttemptAt: due, GiveUpAt: now.Add(r.opts.RetryFor), CreatedAt: now, UpdatedAt: now}, nil
}

func (r *Revoker) open(rev storage.Revocation) (Tokens, error) {
	plain, err := r.d.Vault.Open(rev.Sealed, aad(rev.ID))
	if err != nil {
		return Tokens{}, fmt.Errorf("revocation %s: open tokens: %w", rev.ID, err)
	}
	var t Tokens
	if err := json.Unmarshal(plain, &t); err != nil {
		return Tokens{}, fmt.Errorf("revocation %s: decode tokens: %w", rev.ID, err)
	}
	return t, nil
}

// DeleteConnection deletes the connection (with its token and step-ups)
// and, in the same transaction, records its grant as a pending revocation
// claimed by this call; then it makes the first attempt. The connection is
// gone for everyone once it returns, whatever the outcome; only the
// revocation may still be pending. A missing connection is
// storage.ErrNotFound.
func (r *Revoker) DeleteConnection(ctx context.Context, id string) (Outcome, error) {
	var (
		rev    *storage.Revocation
		tokens Tokens
	)
	err := r.d.Store.DeleteConnectionRevoking(ctx, id, func(c storage.Connection, tok *storage.Token) (*storage.Revocation, error) {
		rev = nil
		if tok == nil {
			return nil, nil
		}
		set, err := tokenset.Open(r.d.Vault, c, *tok)
		if err != nil {
			// A row no key opens cannot be revoked; the deletion
			// still goes ahead (as before pending revocations).
			r.d.Logger.WarnContext(ctx, "token of a deleted connection does not open; not revoked", "connection_id", c.ID, "err", err)
			return nil, nil
		}
		tokens = Tokens{RefreshToken: set.RefreshToken, AccessToken: set.AccessToken}
		if tokens.empty() {
			return nil, nil
		}
		// Claimed by this call from the start: no other replica tries
		// while the first attempt runs.
		p, err := r.record(c.ID, c.ProviderID, tokens, r.d.Now().UTC().Add(r.opts.Lease))
		if err != nil {
			return nil, err
		}
		rev = &p
		return rev, nil
	})
	if err != nil {
		return "", err
	}
	if rev == nil {
		return NotRevoked, nil
	}
	return r.attemptPending(ctx, *rev, tokens), nil
}

// Revoke revokes a grant the broker will not keep (connID and providerID
// are for audit and for finding the endpoint). It tries once; when that
// fails in a way a retry may fix, the grant is kept as a pending
// revocation and retried like a deleted connection's.
func (r *Revoker) Revoke(ctx context.Context, connID, providerID string, t Tokens) (Outcome, error) {
	target, err := r.d.Resolve(ctx, providerID)
	return r.RevokeAt(ctx, connID, providerID, target, err, t)
}

// RevokeAt is Revoke with the first attempt made at target (resolveErr:
// the error resolving it, if any), for a caller that has the provider's
// endpoints at hand; retries resolve providerID again.
func (r *Revoker) RevokeAt(ctx context.Context, connID, providerID string, target Target, resolveErr error, t Tokens) (Outcome, error) {
	if t.empty() {
		return NotRevoked, nil
	}
	res := r.tryAt(ctx, target, resolveErr, t)
	if res.done {
		r.m.outcome(res.outcome)
		return res.outcome, nil
	}
	rev, err := r.record(connID, providerID, t, r.d.Now().UTC().Add(r.backoff(1)))
	if err != nil {
		return Failed, err
	}
	rev.Attempts, rev.LastErrorClass = 1, res.class
	if err := r.d.Store.CreateRevocation(ctx, rev); err != nil {
		return Failed, fmt.Errorf("revocation: keep pending revocation: %w", err)
	}
	r.m.outcome(Pending)
	r.d.Logger.WarnContext(ctx, "revocation at provider failed; will retry", "connection_id", connID,
		"provider_id", providerID, "error_class", res.class)
	return Pending, nil
}
