package stepup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/storage"
)

// CodeLimited is the error code of a refused step-up (429).
const CodeLimited = "step_up_limited"

// Audit event types.
const (
	EventCreated       = "stepup.created"
	EventFailed        = "stepup.failed"
	EventScopesChanged = "connection.scopes_changed"
)

// Limits bound repeated step-ups of one connection: at most Max attempts
// (whatever their outcome) within Window.
type Limits struct {
	Max    int
	Window time.Duration
}

// DefaultLimits: three attempts per connection per ten minutes, enough for
// a person who cancelled once or twice, and a stop for an agent or a
// server that asks for more scopes in a loop.
var DefaultLimits = Limits{Max: 3, Window: 10 * time.Minute}

// Store is the persistence a step-up needs.
type Store interface {
	CreateStepUp(ctx context.Context, s storage.StepUp, since time.Time, fn func(storage.Connection, []storage.StepUp) error) error
	LatestStepUp(ctx context.Context, connectionID string) (storage.StepUp, error)
	UpdateStepUp(ctx context.Context, id string, fn func(storage.StepUp) (storage.StepUp, error)) (storage.StepUp, error)
	FinishStepUp(ctx context.Context, id string, fn func(storage.StepUp, storage.Connection, *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error)) (storage.StepUp, storage.Connection, error)
}

// Owner is who asks: a step-up is only for the client and workspace that
// own the connection.
type Owner struct {
	WorkspaceID string
	ClientName  string
}

// Owns reports whether o owns c. The provider is checked apart, so that an
// owner naming the wrong provider learns it.
func (o Owner) Owns(c storage.Connection) bool {
	return c.WorkspaceID == o.WorkspaceID && c.ClientName == o.ClientName
}

// Applies reports whether a request naming connection c is a step-up: the
// caller owns c and c is active. Anything else (another owner's connection,
// one that needs a reconnect) is left to the reconnect rules.
func Applies(o Owner, c storage.Connection) bool {
	return o.Owns(c) && c.Status == storage.StatusActive
}

// Union is the connection's scopes followed by the added ones it lacks, in
// the order given, without duplicates.
func Union(current, added []string) []string {
	out := slices.Clone(current)
	for _, s := range added {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Manager runs step-ups on a store.
type Manager struct {
	store  Store
	limits Limits
}

// New returns a Manager; zero limits mean DefaultLimits.
func New(store Store, limits Limits) *Manager {
	if limits.Max <= 0 || limits.Window <= 0 {
		limits = DefaultLimits
	}
	return &Manager{store: store, limits: limits}
}

var (
	errChanged   = errors.New("stepup: connection changed")
	errNotActive = errors.New("stepup: connection is not active")
)

// Begin stores s, a new pending attempt for its connection, after checking
// under the connection's row lock that o owns the connection, that it is
// still active at the same provider and scopes the caller saw (s.Scopes
// must be their union with s.Added), and that the attempt is within the
// limits. The answers are client errors: 404 for a connection that is not
// o's, 409 when it is no longer active or changed, 429 step_up_limited
// when there were too many attempts.
func (m *Manager) Begin(ctx context.Context, o Owner, seen storage.Connection, s storage.StepUp) error {
	if s.CreatedAt.IsZero() || s.ConnectionID != seen.ID || s.Status != storage.StepUpPending {
		return fmt.Errorf("stepup: Begin needs a pending attempt of the connection, with its creation time")
	}
	var retryAt time.Time
	err := m.store.CreateStepUp(ctx, s, s.CreatedAt.Add(-m.limits.Window), func(c storage.Connection, recent []storage.StepUp) error {
		switch {
		case !o.Owns(c):
			return httpapi.NotFound("connection")
		case c.Status != storage.StatusActive:
			return errNotActive
		case c.ProviderID != seen.ProviderID || !slices.Equal(c.Scopes, seen.Scopes) || c.Subject != seen.Subject:
			return errChanged
		}
		for _, r := range recent {
			// The newest attempt is the one that expires last, and a state
			// names its attempt by expiry to the second: no ties.
			if r.ExpiresAt.Unix() >= s.ExpiresAt.Unix() {
				return errChanged
			}
		}
		if len(recent) >= m.limits.Max {
			// recent is newest first: the oldest in the window leaves it first.
			retryAt = recent[m.limits.Max-1].CreatedAt.Add(m.limits.Window)
			return errLimited
		}
		return nil
	})
	switch {
	case errors.Is(err, errLimited):
		e := &httpapi.Error{Status: http.StatusTooManyRequests, Code: CodeLimited,
			Message:    fmt.Sprintf("at most %d step-ups per connection in %s; try again later", m.limits.Max, m.limits.Window),
			RetryAfter: max(retryAt.Sub(s.CreatedAt), time.Second)}
		return e
	case errors.Is(err, errNotActive):
		return httpapi.Conflict("not_active", "connection is no longer active: reconnect it instead")
	case errors.Is(err, errChanged):
		return httpapi.Conflict("connection_changed", "connection changed while the step-up started; try again")
	case errors.Is(err, storage.ErrNotFound):
		return httpapi.NotFound("connection")
	}
	return err
}

var errLimited = errors.New("stepup: too many attempts")

// Match returns the attempt a verified state belongs to: the connection's
// newest step-up, when the state carries its nonce and expiry (to the
// second, as a state does). An older attempt's state matches nothing, so
// starting a new attempt retires the previous one. ok is false when the
// state is no step-up's.
func (m *Manager) Match(ctx context.Context, connectionID, nonce string, expires time.Time) (s storage.StepUp, ok bool, err error) {
	s, err = m.store.LatestStepUp(ctx, connectionID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.StepUp{}, false, nil
	}
	if err != nil {
		return storage.StepUp{}, false, err
	}
	return s, s.Nonce == nonce && s.ExpiresAt.Unix() == expires.Unix(), nil
}

// View is the connection as the consent flow of attempt s sees it: the
// attempt's scopes, nonce, PKCE material, return address and expiry, and a
// status that says whether the attempt is still pending.
func View(c storage.Connection, s storage.StepUp) storage.Connection {
	c.Scopes, c.Nonce, c.PKCEVerifier, c.ReturnURL, c.ExpiresAt = s.Scopes, s.Nonce, s.PKCEVerifier, s.ReturnURL, s.ExpiresAt
	switch s.Status {
	case storage.StepUpPending:
		c.Status = storage.StatusPending
	case storage.StepUpExchanging:
		c.Status = storage.StatusExchanging
	case storage.StepUpFailed:
		c.Status = storage.StatusFailed
	default:
		c.Status = storage.StatusActive
	}
	return c
}

// ErrNotPending: the attempt is no longer the pending one it was (used,
// failed, or its PKCE material changed).
var ErrNotPending = errors.New("stepup: attempt is not pending")

// Bind stores the sealed PKCE material that binds a browser to attempt s,
// if s is still pending with the material it was read with.
func (m *Manager) Bind(ctx context.Context, s storage.StepUp, sealed []byte, now time.Time) error {
	_, err := m.store.UpdateStepUp(ctx, s.ID, func(cur storage.StepUp) (storage.StepUp, error) {
		if cur.Status != storage.StepUpPending || !slices.Equal(cur.PKCEVerifier, s.PKCEVerifier) {
			return cur, ErrNotPending
		}
		cur.PKCEVerifier, cur.UpdatedAt = sealed, now
		return cur, nil
	})
	return err
}

// Claim moves attempt s out of pending exactly once, the way a callback
// moves a connection: to exchanging when a code came back, to failed with
// reason when the provider reported an error. It returns the PKCE
// material s held. ErrNotPending for every loser of a race.
func (m *Manager) Claim(ctx context.Context, s storage.StepUp, reason string, now time.Time) ([]byte, error) {
	var sealed []byte
	_, err := m.store.UpdateStepUp(ctx, s.ID, func(cur storage.StepUp) (storage.StepUp, error) {
		if cur.Status != storage.StepUpPending || !slices.Equal(cur.PKCEVerifier, s.PKCEVerifier) {
			return cur, ErrNotPending
		}
		sealed = cur.PKCEVerifier
		cur.Status, cur.UpdatedAt = storage.StepUpExchanging, now
		if reason != "" {
			cur.Status, cur.StatusReason, cur.PKCEVerifier = storage.StepUpFailed, reason, nil
		}
		return cur, nil
	})
	return sealed, err
}

// Fail ends an exchanging attempt with reason; the connection is not
// touched.
func (m *Manager) Fail(ctx context.Context, id, reason string, now time.Time) error {
	_, err := m.store.UpdateStepUp(ctx, id, func(cur storage.StepUp) (storage.StepUp, error) {
		if cur.Status != storage.StepUpExchanging {
			return cur, ErrNotPending
		}
		cur.Status, cur.StatusReason, cur.PKCEVerifier, cur.UpdatedAt = storage.StepUpFailed, reason, nil, now
		return cur, nil
	})
	return err
}

// ErrConnectionGone: the connection was deleted, revoked or restarted
// while the attempt's code was exchanged; the new grant is not kept.
var ErrConnectionGone = errors.New("stepup: connection left active while the step-up completed")

// Complete finishes exchanging attempt id: apply gets the connection (still
// active, or expired since, which the new grant cures) and returns it with
// the new token; Complete then sets the union scopes, clears the refresh
// bookkeeping (a refresh running on the old grant loses its lease, so it
// cannot overwrite the new token) and marks the attempt completed, all in
// one transaction. It returns the scopes the connection had before.
func (m *Manager) Complete(ctx context.Context, id string, now time.Time, apply func(storage.Connection) (storage.Connection, storage.Token)) (before []string, err error) {
	_, _, err = m.store.FinishStepUp(ctx, id, func(s storage.StepUp, c storage.Connection, _ *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error) {
		if s.Status != storage.StepUpExchanging {
			return s, c, storage.TokenChange{}, ErrNotPending
		}
		if c.Status != storage.StatusActive && c.Status != storage.StatusExpired {
			return s, c, storage.TokenChange{}, ErrConnectionGone
		}
		before = c.Scopes
		c, tok := apply(c)
		c.Scopes, c.Status, c.StatusReason, c.UpdatedAt = s.Scopes, storage.StatusActive, "", now
		c.LastErrorClass, c.NextRefreshAt, c.RefreshLeaseOwner, c.RefreshLeaseUntil = "", time.Time{}, "", time.Time{}
		s.Status, s.StatusReason, s.PKCEVerifier, s.UpdatedAt = storage.StepUpCompleted, "", nil, now
		return s, c, storage.TokenChange{Put: &tok}, nil
	})
	return before, err
}

// Report is what agents see of a connection's latest step-up.
type Report struct {
	Status string   // "pending", "completed" or "failed"
	Reason string   // why it failed ("access_denied", "expired"…)
	Scopes []string // what it asks for
}

// Latest reports the connection's newest step-up; ok is false when it has
// none. A pending or exchanging attempt past its expiry reads as failed
// with reason "expired": nothing will complete it any more.
func (m *Manager) Latest(ctx context.Context, connectionID string, now time.Time) (r Report, ok bool, err error) {
	s, err := m.store.LatestStepUp(ctx, connectionID)
	if errors.Is(err, storage.ErrNotFound) {
		return Report{}, false, nil
	}
	if err != nil {
		return Report{}, false, err
	}
	return report(s, now), true, nil
}

func report(s storage.StepUp, now time.Time) Report {
	r := Report{Scopes: s.Scopes}
	switch s.Status {
	case storage.StepUpCompleted:
		r.Status = "completed"
	case storage.StepUpFailed:
		r.Status, r.Reason = "failed", s.StatusReason
	default:
		r.Status = "pending"
		// The exchange of a callback accepted before the expiry may still
		// finish, so an exchanging attempt gets a minute of grace.
		if grace := s.ExpiresAt.Add(time.Minute); now.After(grace) || (s.Status == storage.StepUpPending && !now.Before(s.ExpiresAt)) {
			r.Status, r.Reason = "failed", "expired"
		}
	}
	return r
}

// Scopes formats scopes for audit details.
func Scopes(s []string) string { return strings.Join(s, " ") }
