package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Refresh tuning defaults (Config fields override).
const (
	defaultRefreshMargin = 60 * time.Second
	defaultLeaseTTL      = 30 * time.Second
	defaultLockWait      = 35 * time.Second
	minBackoff           = 15 * time.Second
	maxBackoff           = 10 * time.Minute
	leasePoll            = 50 * time.Millisecond
)

var (
	errLeaseHeld = errors.New("refresh lease held by another broker")
	errLostLease = errors.New("refresh lease lost before the write")
	errFreshNow  = errors.New("token was refreshed meanwhile")
	errNoToken   = errors.New("connection has no token")
	errBackoff   = errors.New("refresh backing off after provider trouble")
)

// flight is the in-process single-flight: concurrent readers of one
// connection share one refresh.
type flight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	set  tokenSet
	conn storage.Connection
	err  error
}

func (f *flight) do(key string, fn func() (storage.Connection, tokenSet, error)) (storage.Connection, tokenSet, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.conn, c.set, c.err
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	c.conn, c.set, c.err = fn()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.conn, c.set, c.err
}

// refreshWant decides, from a token's expiry, whether a refresh is still
// wanted after re-reading it.
type refreshWant func(expiresAt time.Time) bool

func (b *Broker) expiringWithin(margin time.Duration) refreshWant {
	return func(exp time.Time) bool { return !exp.IsZero() && exp.Sub(b.now()) < margin }
}

// currentTokenFrom returns the connection's token with at least the
// refresh margin of life left, refreshing first when needed. force
// refreshes even a fresh token (an agent saw a 401), unless another reader
// refreshed it since this request read it. tok and set are the token row as
// the request read it (with its connection, in one query).
func (b *Broker) currentTokenFrom(ctx context.Context, c storage.Connection, tok storage.Token, set tokenSet, force bool) (storage.Connection, tokenSet, error) {
	want := b.expiringWithin(b.cfg.RefreshMargin)
	if !force && !want(set.Expiry) {
		return c, set, nil
	}
	now := b.now()
	if c.LastErrorClass == string(exchange.ClassTransient) && c.NextRefreshAt.After(now) {
		// Backing off after provider trouble: serve what is still valid.
		if !force && (set.Expiry.IsZero() || set.Expiry.After(now)) {
			return c, set, nil
		}
		return c, tokenSet{}, httpapi.Unavailable("the provider is failing; retry later", c.NextRefreshAt.Sub(now), nil)
	}
	if force {
		seen := tok.UpdatedAt
		want = func(time.Time) bool { return true }
		// A forced refresh is satisfied by any refresh after this read.
		return b.flights.do("force:"+c.ID, func() (storage.Connection, tokenSet, error) {
			return b.refreshShared(context.WithoutCancel(ctx), c.ID, seen, want, true)
		})
	}
	return b.flights.do(c.ID, func() (storage.Connection, tokenSet, error) {
		return b.refreshShared(context.WithoutCancel(ctx), c.ID, tok.UpdatedAt, want, false)
	})
}

// openRow opens a connection's token row; no row means the user must
// consent again.
func (b *Broker) openRow(c storage.Connection, row *storage.Token) (tokenSet, error) {
	if row == nil {
		return tokenSet{}, httpapi.Conflict(httpapi.CodeReauthRequired, "connection has no stored token: the user must connect again")
	}
	return b.openSet(c.ID, *row)
}

func (b *Broker) openSet(connID string, tok storage.Token) (tokenSet, error) {
	plain, err := b.vault.Open(tok.Ciphertext, tokenAAD(connID))
	if err != nil {
		return tokenSet{}, fmt.Errorf("opening token of connection %s: %w", connID, err)
	}
	var set tokenSet
	if err := json.Unmarshal(plain, &set); err != nil {
		return tokenSet{}, fmt.Errorf("decoding token of connection %s: %w", connID, err)
	}
	return set, nil
}

func newLeaseOwner(instance string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return instance + "/" + hex.EncodeToString(b[:])
}

// refreshShared is the cross-process part: claim the connection's refresh
// lease (a compare-and-swap under the row lock), refresh at the provider,
// and write the result fenced by the version the claim produced. Waiters
// re-read the stored token instead of refreshing again.
func (b *Broker) refreshShared(ctx context.Context, id string, seen time.Time, want refreshWant, force bool) (storage.Connection, tokenSet, error) {
	start := b.now()
	deadline := start.Add(b.cfg.LockWait)
	owner := newLeaseOwner(b.instance)
	for {
		var current *storage.Token
		var backoffUntil time.Time
		claimed, err := b.store.UpdateConnection(ctx, id, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if err := usable(c); err != nil {
				return c, storage.TokenChange{}, err
			}
			if tok == nil {
				return c, storage.TokenChange{}, errNoToken
			}
			if tok.UpdatedAt.After(seen) && !want(tok.ExpiresAt) {
				t := *tok
				current = &t
				return c, storage.TokenChange{}, errFreshNow
			}
			now := b.now()
			if c.RefreshLeaseOwner != "" && c.RefreshLeaseUntil.After(now) {
				return c, storage.TokenChange{}, errLeaseHeld
			}
			// Another broker (or this one) just failed at the provider: the
			// backoff is per connection, shared by every replica.
			if c.LastErrorClass == string(exchange.ClassTransient) && c.NextRefreshAt.After(now) {
				t := *tok
				current, backoffUntil = &t, c.NextRefreshAt
				return c, storage.TokenChange{}, errBackoff
			}
			t := *tok
			current = &t
			c.RefreshLeaseOwner, c.RefreshLeaseUntil = owner, now.Add(b.cfg.LeaseTTL)
			return c, storage.TokenChange{}, nil
		})
		switch {
		case err == nil:
			b.m.lockWait.Observe(b.now().Sub(start).Seconds())
			return b.refreshHeld(ctx, claimed, *current, owner)
		case errors.Is(err, errFreshNow):
			b.m.lockWait.Observe(b.now().Sub(start).Seconds())
			conn, gerr := b.store.GetConnection(ctx, id)
			if gerr != nil {
				return conn, tokenSet{}, gerr
			}
			set, oerr := b.openSet(id, *current)
			return conn, set, oerr
		case errors.Is(err, errBackoff):
			conn, gerr := b.store.GetConnection(ctx, id)
			if gerr != nil {
				return conn, tokenSet{}, gerr
			}
			set, oerr := b.openSet(id, *current)
			now := b.now()
			if oerr == nil && !force && (set.Expiry.IsZero() || set.Expiry.After(now)) {
				return conn, set, nil
			}
			if oerr != nil {
				return conn, tokenSet{}, oerr
			}
			return conn, tokenSet{}, httpapi.Unavailable("the provider is failing; retry later", backoffUntil.Sub(now), nil)
		case errors.Is(err, errNoToken):
			return storage.Connection{}, tokenSet{}, httpapi.Conflict(httpapi.CodeReauthRequired, "connection has no stored token: the user must connect again")
		case errors.Is(err, errLeaseHeld):
			if !b.now().Before(deadline) {
				return storage.Connection{}, tokenSet{}, httpapi.Unavailable("token refresh in progress elsewhere; retry", 2*time.Second, err)
			}
			select {
			case <-ctx.Done():
				return storage.Connection{}, tokenSet{}, ctx.Err()
			case <-time.After(leasePoll):
			}
		default:
			return storage.Connection{}, tokenSet{}, err
		}
	}
}

// refreshHeld runs with the lease held: it calls the provider and records
// the outcome, always releasing the lease.
func (b *Broker) refreshHeld(ctx context.Context, c storage.Connection, tok storage.Token, owner string) (storage.Connection, tokenSet, error) {
	start := b.now()
	set, err := b.openSet(c.ID, tok)
	if err != nil {
		b.release(ctx, c, owner, nil)
		return c, tokenSet{}, err
	}
	if set.RefreshToken == "" {
		if set.Expiry.IsZero() || set.Expiry.After(b.now()) {
			b.release(ctx, c, owner, nil)
			return c, set, nil
		}
		b.observeRefresh("no_refresh_token", start)
		return b.expire(ctx, c, owner, "no_refresh_token")
	}
	prov, err := b.lookupProvider(ctx, c.ProviderID, "")
	if err == nil {
		var ends endpoints
		if ends, err = b.endpoints(ctx, prov.profile); err == nil {
			var secret, _ = b.clientSecret(prov)
			ep := b.tokenEndpoint(prov, ends, secret)
			var fresh *exchange.Token
			if fresh, err = b.xchg.Refresh(ctx, ep, set.RefreshToken, nil); err == nil {
				if err = prov.profile.NormalizeTokenResponse(fresh); err == nil {
					return b.storeRefreshed(ctx, c, owner, set, fresh, prov, ends, start)
				}
			}
		}
	}
	class := exchange.Classify(err)
	if _, isAPI := httpapi.As(err); isAPI || class == exchange.ClassNone {
		class = exchange.ClassTransient // provider missing or discovery down: not the grant's fault
	}
	b.log.WarnContext(ctx, "token refresh failed", "connection_id", c.ID, "provider", c.ProviderName, "class", string(class), "err", err)
	switch class {
	case exchange.ClassInvalidGrant:
		b.observeRefresh("invalid_grant", start)
		return b.expire(ctx, c, owner, "invalid_grant")
	case exchange.ClassInvalidClient:
		b.observeRefresh("invalid_client", start)
		b.m.refreshProviderErrors.WithLabelValues(c.ProviderName).Inc()
		b.release(ctx, c, owner, func(c *storage.Connection) { c.LastErrorClass = string(class) })
		if !set.Expiry.IsZero() && set.Expiry.After(b.now()) {
			return c, set, nil
		}
		return c, tokenSet{}, httpapi.BadGateway(httpapi.CodeProviderError, "the provider rejected the broker's client credentials", err)
	default:
		b.observeRefresh("transient", start)
		backoff := minBackoff
		if c.LastErrorClass == string(exchange.ClassTransient) {
			if prev := c.NextRefreshAt.Sub(c.UpdatedAt); prev > 0 {
				backoff = min(max(2*prev, minBackoff), maxBackoff)
			}
		}
		now := b.now().UTC()
		b.release(ctx, c, owner, func(c *storage.Connection) {
			c.LastErrorClass, c.NextRefreshAt = string(exchange.ClassTransient), now.Add(backoff)
		})
		if set.Expiry.IsZero() || set.Expiry.After(now) {
			return c, set, nil
		}
		return c, tokenSet{}, httpapi.Unavailable("the provider did not refresh the token; retry later", backoff, err)
	}
}

func (b *Broker) observeRefresh(result string, start time.Time) {
	b.m.refreshes.WithLabelValues(result).Inc()
	b.m.refreshSeconds.Observe(b.now().Sub(start).Seconds())
}

// storeRefreshed persists the new token set (rotated refresh token first,
// before any caller sees the new access token), fenced by the claim's
// version: a holder whose lease ran out and was taken over loses the write
// and its token is discarded.
func (b *Broker) storeRefreshed(ctx context.Context, c storage.Connection, owner string, old tokenSet, fresh *exchange.Token, prov registered, ends endpoints, start time.Time) (storage.Connection, tokenSet, error) {
	now := b.now().UTC()
	set := newTokenSet(fresh, prov.profile, now)
	if set.RefreshToken == "" {
		set.RefreshToken = old.RefreshToken
	}
	// An id_token in a refresh response is handed to agents only once
	// verified (no nonce on refresh, OIDC Core §12.2) and about the same
	// subject; otherwise the previous, verified one is kept.
	if set.IDToken != "" && !b.refreshedIDTokenOK(ctx, c, prov, ends, set.IDToken) {
		set.IDToken = ""
	}
	if set.IDToken == "" {
		set.IDToken = old.IDToken
	}
	if set.Scope == "" {
		set.Scope = old.Scope
	}
	plain, err := json.Marshal(set)
	if err != nil {
		return c, tokenSet{}, err
	}
	sealed, err := b.vault.Seal(plain, tokenAAD(c.ID))
	if err != nil {
		return c, tokenSet{}, err
	}
	updated, err := b.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if cur.Version != c.Version || cur.RefreshLeaseOwner != owner {
			return cur, storage.TokenChange{}, errLostLease
		}
		cur.RefreshLeaseOwner, cur.RefreshLeaseUntil = "", time.Time{}
		cur.LastRefreshAt, cur.LastErrorClass, cur.NextRefreshAt, cur.UpdatedAt = now, "", time.Time{}, now
		return cur, storage.TokenChange{Put: &storage.Token{ConnectionID: cur.ID, Ciphertext: sealed, ExpiresAt: set.Expiry,
			ExpirySource: set.ExpirySource, CreatedAt: now, UpdatedAt: now}}, nil
	})
	if errors.Is(err, errLostLease) {
		b.observeRefresh("lost_lease", start)
		b.log.WarnContext(ctx, "refresh result discarded: lease lost", "connection_id", c.ID)
		return c, tokenSet{}, httpapi.Unavailable("token refresh raced with another broker; retry", time.Second, err)
	}
	if err != nil {
		return c, tokenSet{}, err
	}
	b.observeRefresh("success", start)
	return updated, set, nil
}

// release clears the lease (if still ours), applying edit.
func (b *Broker) release(ctx context.Context, c storage.Connection, owner string, edit func(*storage.Connection)) {
	_, err := b.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if cur.RefreshLeaseOwner != owner {
			return cur, storage.TokenChange{}, errLostLease
		}
		cur.RefreshLeaseOwner, cur.RefreshLeaseUntil, cur.UpdatedAt = "", time.Time{}, b.now().UTC()
		if edit != nil {
			edit(&cur)
		}
		return cur, storage.TokenChange{}, nil
	})
	if err != nil && !errors.Is(err, errLostLease) {
		b.log.WarnContext(ctx, "releasing refresh lease", "connection_id", c.ID, "err", err)
	}
}

// expire marks the connection as needing re-consent and deletes its token.
func (b *Broker) expire(ctx context.Context, c storage.Connection, owner, reason string) (storage.Connection, tokenSet, error) {
	updated, err := b.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if cur.RefreshLeaseOwner != owner {
			return cur, storage.TokenChange{}, errLostLease
		}
		cur.Status, cur.StatusReason, cur.LastErrorClass = storage.StatusExpired, reason, reason
		cur.RefreshLeaseOwner, cur.RefreshLeaseUntil, cur.UpdatedAt = "", time.Time{}, b.now().UTC()
		return cur, storage.TokenChange{Delete: true}, nil
	})
	if err != nil {
		return c, tokenSet{}, err
	}
	b.log.InfoContext(ctx, "connection needs re-consent", "connection_id", c.ID, "reason", reason)
	return updated, tokenSet{}, &httpapi.Error{Status: http.StatusConflict, Code: httpapi.CodeReauthRequired,
		Message: "the provider no longer accepts this connection's grant: the user must connect again",
		Extra:   map[string]any{"reason": reason}}
}

func (b *Broker) refreshedIDTokenOK(ctx context.Context, c storage.Connection, prov registered, ends endpoints, raw string) bool {
	if ends.Issuer == "" || ends.JWKS == "" {
		return false
	}
	claims, err := b.idt.Verify(ctx, raw, idtoken.Expect{Issuer: ends.Issuer, ClientID: prov.profile.ClientID, JWKSURL: ends.JWKS})
	if err != nil {
		b.log.WarnContext(ctx, "refreshed id_token not verified; keeping the previous one", "connection_id", c.ID, "err", err)
		return false
	}
	if c.Subject != "" && (claims.Subject != c.Subject || claims.Issuer != c.Issuer) {
		b.log.WarnContext(ctx, "refreshed id_token names another subject; keeping the previous one", "connection_id", c.ID)
		return false
	}
	return true
}
