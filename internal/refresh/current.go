package refresh

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/tracing"
)

// Usable reports why a connection cannot give out a token, as the error
// agents see: 409 not_ready while consent is under way, 409
// reauth_required once it failed, expired or was revoked.
func Usable(c storage.Connection) error {
	switch c.Status {
	case storage.StatusActive:
		return nil
	case storage.StatusPending, storage.StatusExchanging:
		return httpapi.Conflict(httpapi.CodeNotReady, "connection is %s: consent not completed yet", c.Status)
	case storage.StatusAwaitingConfirmation:
		return httpapi.Conflict(httpapi.CodeNotReady, "connection is awaiting its user's confirmation")
	default:
		return httpapi.Conflict(httpapi.CodeReauthRequired, "connection is %s: the user must connect again", c.Status)
	}
}

// Current returns the connection's token with at least the refresh margin
// of life left (the margin bounded by a third of the token's lifetime, see
// effectiveMargin), refreshing first when needed. force refreshes even a
// fresh token (an agent saw a 401), unless another reader refreshed it since
// this request read it. tok and set are the token row as the request read
// it (with its connection, in one query).
func (r *Refresher) Current(ctx context.Context, c storage.Connection, tok storage.Token, set tokenset.Set, force bool) (storage.Connection, tokenset.Set, error) {
	if !force && !r.due(r.cfg.Margin, tok) {
		return c, set, nil
	}
	now := r.now()
	if backingOff(c, now) {
		// Backing off after provider trouble: serve what is still valid.
		if !force && (set.Expiry.IsZero() || set.Expiry.After(now)) {
			return c, set, nil
		}
		return c, tokenset.Set{}, httpapi.Unavailable("the provider is failing; retry later", c.NextRefreshAt.Sub(now), nil)
	}
	key := c.ID
	if force {
		// A failed forced refresh answers the failure where a plain read
		// serves the still valid token: they do not share a flight.
		key = "force:" + c.ID
	}
	return r.flights.do(key, func() (storage.Connection, tokenset.Set, error) {
		kind := KindOnRead
		if force {
			kind = KindForced
		}
		return r.shared(context.WithoutCancel(ctx), c.ID, tok.UpdatedAt, force, kind)
	})
}

// shared is the cross-process part: claim the connection's refresh lease
// (a compare-and-swap under the row lock), refresh at the provider, and
// write the result fenced by the lease owner the claim produced. seen is
// the UpdatedAt of the token row the caller decided on: a token written
// after it (by another reader, replica or the worker) that has not expired
// is taken as it is, never refreshed again. Waiters therefore re-read the
// stored token instead of refreshing again, whatever the token's lifetime;
// before, a waiter took it only when it was outside the refresh margin, so
// with tokens that live less than the margin every waiter refreshed once
// more.
func (r *Refresher) shared(ctx context.Context, id string, seen time.Time, force bool, kind string) (_ storage.Connection, _ tokenset.Set, err error) {
	ctx, span := tracing.Start(ctx, r.tracer, "token.refresh", attribute.Bool("dromos.refresh.forced", force))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, "refresh failed")
		}
		span.End()
	}()
	start := r.now()
	deadline := start.Add(r.cfg.LockWait)
	owner := newLeaseOwner(r.cfg.Instance)
	for {
		var current *storage.Token
		var backoffUntil time.Time
		claimed, err := r.store.UpdateConnection(ctx, id, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if err := Usable(c); err != nil {
				return c, storage.TokenChange{}, err
			}
			if tok == nil {
				return c, storage.TokenChange{}, errNoToken
			}
			now := r.now()
			if tok.UpdatedAt.After(seen) && usableAt(*tok, now) {
				t := *tok
				current = &t
				return c, storage.TokenChange{}, errFreshNow
			}
			if c.RefreshLeaseOwner != "" && c.RefreshLeaseUntil.After(now) {
				return c, storage.TokenChange{}, errLeaseHeld
			}
			// Another broker (or this one) just failed at the provider: the
			// backoff is per connection, shared by every replica.
			if backingOff(c, now) {
				t := *tok
				current, backoffUntil = &t, c.NextRefreshAt
				return c, storage.TokenChange{}, errBackoff
			}
			t := *tok
			current = &t
			c.RefreshLeaseOwner, c.RefreshLeaseUntil = owner, now.Add(r.cfg.LeaseTTL)
			return c, storage.TokenChange{}, nil
		})
		switch {
		case err == nil:
			r.m.LockWait.Observe(r.now().Sub(start).Seconds())
			return r.held(ctx, claimed, *current, owner, force, kind)
		case errors.Is(err, errFreshNow):
			r.m.LockWait.Observe(r.now().Sub(start).Seconds())
			conn, gerr := r.store.GetConnection(ctx, id)
			if gerr != nil {
				return conn, tokenset.Set{}, gerr
			}
			set, oerr := tokenset.Open(r.vault, conn, *current)
			return conn, set, oerr
		case errors.Is(err, errBackoff):
			conn, gerr := r.store.GetConnection(ctx, id)
			if gerr != nil {
				return conn, tokenset.Set{}, gerr
			}
			set, oerr := tokenset.Open(r.vault, conn, *current)
			if oerr != nil {
				return conn, tokenset.Set{}, oerr
			}
			now := r.now()
			if !force && (set.Expiry.IsZero() || set.Expiry.After(now)) {
				return conn, set, nil
			}
			return conn, tokenset.Set{}, httpapi.Unavailable("the provider is failing; retry later", backoffUntil.Sub(now), nil)
		case errors.Is(err, errNoToken):
			return storage.Connection{}, tokenset.Set{}, httpapi.Conflict(httpapi.CodeReauthRequired, "connection has no stored token: the user must connect again")
		case errors.Is(err, errLeaseHeld):
			if !r.now().Before(deadline) {
				return storage.Connection{}, tokenset.Set{}, httpapi.Unavailable("token refresh in progress elsewhere; retry", 2*time.Second, err)
			}
			select {
			case <-ctx.Done():
				return storage.Connection{}, tokenset.Set{}, ctx.Err()
			case <-time.After(leasePoll):
			}
		default:
			return storage.Connection{}, tokenset.Set{}, err
		}
	}
}

// held runs with the lease held: it calls the provider and records the
// outcome, always releasing the lease.
func (r *Refresher) held(ctx context.Context, c storage.Connection, tok storage.Token, owner string, force bool, kind string) (storage.Connection, tokenset.Set, error) {
	start := r.now()
	set, err := tokenset.Open(r.vault, c, tok)
	if err != nil {
		r.release(ctx, c, owner, nil)
		return c, tokenset.Set{}, err
	}
	if set.RefreshToken == "" {
		// A client_credentials connection has no refresh token: the
		// broker asks for a new token instead, under the same lease, so
		// readers share one request as they share a refresh.
		if g, gerr := r.grants.Grant(ctx, c.ProviderID); gerr == nil && g.Profile.Grant == provider.GrantClientCredentials {
			if !r.spend(ctx, c.ProviderID, c.ProviderName, g.Profile, kind) {
				return r.deferred(ctx, c, owner, set, kind)
			}
			fresh, err := r.xchg.ClientCredentials(ctx, g.Endpoint, c.Scopes)
			if err == nil {
				if err = g.Profile.NormalizeTokenResponse(fresh); err == nil {
					return r.storeRefreshed(ctx, c, owner, set, fresh, g, start)
				}
			}
			return r.failed(ctx, c, owner, set, force, start, err)
		}
	}
	if set.RefreshToken == "" {
		if now := r.now().UTC(); set.Expiry.IsZero() || set.Expiry.After(now) {
			// Nothing to refresh with. The worker need not look again
			// before the token expires (then it is marked for re-consent)
			// or, when its expiry is unknown, for a day; without this it
			// picked the connection again on every pass.
			next := set.Expiry
			if next.IsZero() {
				next = now.Add(noRefreshTokenRecheck)
			}
			r.release(ctx, c, owner, func(c *storage.Connection) { c.NextRefreshAt = next })
			return c, set, nil
		}
		r.observe("no_refresh_token", start)
		return r.expire(ctx, c, owner, "no_refresh_token")
	}
	grant, err := r.grants.Grant(ctx, c.ProviderID)
	if err == nil && !r.spend(ctx, c.ProviderID, c.ProviderName, grant.Profile, kind) {
		return r.deferred(ctx, c, owner, set, kind)
	}
	if err == nil {
		var fresh *exchange.Token
		if fresh, err = r.xchg.Refresh(ctx, grant.Endpoint, set.RefreshToken, nil); err == nil {
			if err = grant.Profile.NormalizeTokenResponse(fresh); err == nil {
				return r.storeRefreshed(ctx, c, owner, set, fresh, grant, start)
			}
		}
	}
	return r.failed(ctx, c, owner, set, force, start, err)
}

// failed records a refresh (or client_credentials request) that failed
// with err, releasing the lease.
func (r *Refresher) failed(ctx context.Context, c storage.Connection, owner string, set tokenset.Set, force bool, start time.Time, err error) (storage.Connection, tokenset.Set, error) {
	class := exchange.Classify(err)
	if _, isAPI := httpapi.As(err); isAPI || class == exchange.ClassNone {
		class = exchange.ClassTransient // provider missing or discovery down: not the grant's fault
	}
	r.log.WarnContext(ctx, "token refresh failed", "connection_id", c.ID, "provider", c.ProviderName, "class", string(class), "err", err)
	r.throttleOn(ctx, c.ProviderID, c.ProviderName, err)
	switch class {
	case exchange.ClassInvalidGrant:
		r.observe("invalid_grant", start)
		return r.expire(ctx, c, owner, "invalid_grant")
	case exchange.ClassInvalidClient:
		r.observe("invalid_client", start)
		r.m.ClientErrors.WithLabelValues(c.ProviderName).Inc()
		// A wrong or rotated client secret is not fixed in seconds: back
		// off, shared by every replica and every reader, instead of
		// calling the provider on each read and each worker pass.
		backoff := nextBackoff(c, class, minClientBackoff)
		now := r.now().UTC()
		r.release(ctx, c, owner, func(c *storage.Connection) {
			c.LastErrorClass, c.NextRefreshAt = string(class), now.Add(backoff)
		})
		// A still valid token is served, except to a forced refresh: its
		// caller saw that token refused and needs to hear that it failed.
		if !force && !set.Expiry.IsZero() && set.Expiry.After(now) {
			return c, set, nil
		}
		return c, tokenset.Set{}, httpapi.BadGateway(httpapi.CodeProviderError, "the provider rejected the broker's client credentials", err)
	default:
		r.observe("transient", start)
		backoff := nextBackoff(c, exchange.ClassTransient, minBackoff)
		now := r.now().UTC()
		r.release(ctx, c, owner, func(c *storage.Connection) {
			c.LastErrorClass, c.NextRefreshAt = string(exchange.ClassTransient), now.Add(backoff)
		})
		if !force && (set.Expiry.IsZero() || set.Expiry.After(now)) {
			return c, set, nil
		}
		return c, tokenset.Set{}, httpapi.Unavailable("the provider did not refresh the token; retry later", backoff, err)
	}
}

// backingOff reports whether the connection is waiting out a provider
// failure (transient trouble or refused client credentials).
func backingOff(c storage.Connection, now time.Time) bool {
	return (c.LastErrorClass == string(exchange.ClassTransient) || c.LastErrorClass == string(exchange.ClassInvalidClient)) &&
		c.NextRefreshAt.After(now)
}

// nextBackoff doubles the previous wait when the last failure was of the
// same class, from floor up to maxBackoff.
func nextBackoff(c storage.Connection, class exchange.Class, floor time.Duration) time.Duration {
	if c.LastErrorClass == string(class) {
		if prev := c.NextRefreshAt.Sub(c.UpdatedAt); prev > 0 {
			return min(max(2*prev, floor), maxBackoff)
		}
	}
	return floor
}

func (r *Refresher) observe(result string, start time.Time) {
	r.m.Refreshes.WithLabelValues(result).Inc()
	r.m.Seconds.Observe(r.now().Sub(start).Seconds())
}

// storeRefreshed persists the new token set (rotated refresh token first, before
// any caller sees the new access token), fenced by the lease: the owner
// value is random per claim, so a holder whose lease ran out and was taken
// over loses the write and its token is discarded. Other writes to the row
// meanwhile (a key rotation re-sealing it) do not void the lease: the
// provider has already consumed the old refresh token, so the new one must
// be kept.
func (r *Refresher) storeRefreshed(ctx context.Context, c storage.Connection, owner string, old tokenset.Set, fresh *exchange.Token, grant Grant, start time.Time) (storage.Connection, tokenset.Set, error) {
	now := r.now().UTC()
	set := tokenset.New(fresh, grant.Profile, now)
	if set.RefreshToken == "" {
		set.RefreshToken = old.RefreshToken
	}
	// An id_token in a refresh response is handed to agents only once
	// verified (no nonce on refresh, OIDC Core §12.2) and about the same
	// subject; otherwise the previous, verified one is kept.
	if set.IDToken != "" && !r.refreshedIDTokenOK(ctx, c, grant, set.IDToken) {
		set.IDToken = ""
	}
	if set.IDToken == "" {
		set.IDToken = old.IDToken
	}
	if set.Scope == "" {
		set.Scope = old.Scope
	}
	// Members only the code exchange returned (Dropbox account_id, Slack
	// team…) stay; the refresh response's own win. One holding tokens
	// (Slack's authed_user with the user token) does not: it would hand
	// agents a token the refresh did not renew.
	for k, v := range old.Extra {
		if _, ok := set.Extra[k]; !ok && !tokenset.Holds(v, "access_token", "refresh_token", "id_token") {
			if set.Extra == nil {
				set.Extra = make(map[string]any, len(old.Extra))
			}
			set.Extra[k] = v
		}
	}
	sealed, err := tokenset.Seal(r.vault, c, set)
	if err != nil {
		return c, tokenset.Set{}, err
	}
	gone := false // the connection was deleted or revoked meanwhile
	write := func() (storage.Connection, error) {
		return r.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if cur.Status != storage.StatusActive {
				gone = true
				return cur, storage.TokenChange{}, errLostLease
			}
			if cur.RefreshLeaseOwner != owner {
				return cur, storage.TokenChange{}, errLostLease
			}
			cur.RefreshLeaseOwner, cur.RefreshLeaseUntil = "", time.Time{}
			cur.LastRefreshAt, cur.LastErrorClass, cur.NextRefreshAt, cur.UpdatedAt = now, "", time.Time{}, now
			return cur, storage.TokenChange{Put: &storage.Token{ConnectionID: cur.ID, Ciphertext: sealed, AADVersion: tokenset.AADVersion, ExpiresAt: set.Expiry,
				ExpirySource: set.ExpirySource, CreatedAt: now, UpdatedAt: now}}, nil
		})
	}
	// The provider has consumed the old refresh token: a database blip
	// now (failover, a dropped connection) must not lose the new one.
	// The write is fenced by the lease, so trying again is safe.
	updated, err := write()
	for i, wait := 0, 200*time.Millisecond; errors.Is(err, storage.ErrUnavailable) && i < storeRetries; i, wait = i+1, 2*wait {
		r.log.WarnContext(ctx, "storing a refreshed token failed; trying again", "connection_id", c.ID, "err", err)
		time.Sleep(wait)
		updated, err = write()
	}
	if errors.Is(err, storage.ErrNotFound) || gone {
		// Deleted (or being deleted) while the provider answered: its
		// revocation covered the old refresh token, not the one just
		// issued.
		r.revokeUnstored(ctx, c.ID, grant, set)
		if !gone {
			return c, tokenset.Set{}, httpapi.NotFound("connection")
		}
	}
	if errors.Is(err, errLostLease) {
		r.observe("lost_lease", start)
		r.log.WarnContext(ctx, "refresh result discarded: lease lost", "connection_id", c.ID)
		r.release(ctx, c, owner, nil) // still ours if only the status changed
		if gone {
			return c, tokenset.Set{}, httpapi.Conflict(httpapi.CodeReauthRequired, "the connection was deleted or revoked during the refresh")
		}
		return c, tokenset.Set{}, httpapi.Unavailable("token refresh raced with another broker; retry", time.Second, err)
	}
	if err != nil {
		return c, tokenset.Set{}, err
	}
	r.observe("success", start)
	return updated, set, nil
}

// revokeUnstored revokes, best effort, a refreshed grant that has no
// connection to be stored on, so that no grant stays alive that nobody
// holds.
func (r *Refresher) revokeUnstored(ctx context.Context, id string, grant Grant, set tokenset.Set) {
	if grant.RevocationURL == "" || (set.RefreshToken == "" && set.AccessToken == "") {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.xchg.RevokeGrant(ctx, grant.RevocationURL, grant.Endpoint, set.RefreshToken, set.AccessToken); err != nil {
		r.log.WarnContext(ctx, "revoking a refreshed grant of a deleted connection failed", "connection_id", id, "err", err)
		return
	}
	r.log.InfoContext(ctx, "revoked a refreshed grant of a deleted connection", "connection_id", id)
}

// release clears the lease (if still ours), applying edit.
func (r *Refresher) release(ctx context.Context, c storage.Connection, owner string, edit func(*storage.Connection)) {
	_, err := r.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if cur.RefreshLeaseOwner != owner {
			return cur, storage.TokenChange{}, errLostLease
		}
		cur.RefreshLeaseOwner, cur.RefreshLeaseUntil, cur.UpdatedAt = "", time.Time{}, r.now().UTC()
		if edit != nil {
			edit(&cur)
		}
		return cur, storage.TokenChange{}, nil
	})
	if err != nil && !errors.Is(err, errLostLease) {
		r.log.WarnContext(ctx, "releasing refresh lease", "connection_id", c.ID, "err", err)
	}
}

// expire marks the connection as needing re-consent and deletes its token.
func (r *Refresher) expire(ctx context.Context, c storage.Connection, owner, reason string) (storage.Connection, tokenset.Set, error) {
	updated, err := r.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if cur.RefreshLeaseOwner != owner {
			return cur, storage.TokenChange{}, errLostLease
		}
		cur.Status, cur.StatusReason, cur.LastErrorClass = storage.StatusExpired, reason, reason
		cur.RefreshLeaseOwner, cur.RefreshLeaseUntil, cur.UpdatedAt = "", time.Time{}, r.now().UTC()
		return cur, storage.TokenChange{Delete: true}, nil
	})
	if err != nil {
		return c, tokenset.Set{}, err
	}
	r.log.InfoContext(ctx, "connection needs re-consent", "connection_id", c.ID, "reason", reason)
	return updated, tokenset.Set{}, &httpapi.Error{Status: http.StatusConflict, Code: httpapi.CodeReauthRequired,
		Message: "the provider no longer accepts this connection's grant: the user must connect again",
		Extra:   map[string]any{"reason": reason}}
}

func (r *Refresher) refreshedIDTokenOK(ctx context.Context, c storage.Connection, grant Grant, raw string) bool {
	if grant.VerifyIDToken == nil {
		return false
	}
	sub, iss, err := grant.VerifyIDToken(ctx, raw)
	if err != nil {
		r.log.WarnContext(ctx, "refreshed id_token not verified; keeping the previous one", "connection_id", c.ID, "err", err)
		return false
	}
	if c.Subject != "" && (sub != c.Subject || iss != c.Issuer) {
		r.log.WarnContext(ctx, "refreshed id_token names another subject; keeping the previous one", "connection_id", c.ID)
		return false
	}
	return true
}
