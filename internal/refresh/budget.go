package refresh

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// What a refresh was for, the kind label of the provider call metrics.
const (
	KindOnRead    = "on_read"    // an agent's read found the token due
	KindForced    = "forced"     // an agent asked for a new token (it saw a 401)
	KindAhead     = "ahead"      // the worker, before a recently read token expires
	KindKeepAlive = "keep_alive" // the worker, before an idle grant lapses
)

// budgetWindow is the window provider calls are counted in.
const budgetWindow = time.Minute

// minThrottle is how long a provider's 429 without Retry-After keeps
// background refreshes away.
const minThrottle = time.Minute

// unlimited stands for "no cap" in the shared count, which still runs so
// that a provider's 429 holds background work back for every provider.
const unlimited = 1 << 30

func background(kind string) bool { return kind == KindAhead || kind == KindKeepAlive }

// spend takes one call from the provider's budget, shared by every replica
// through the database. Background refreshes may use the budget less the
// share kept for agents' reads (a fifth, at least one call), and nothing
// while the provider is throttled after a 429; reads get the whole budget,
// a quarter of it while throttled. A failure to count lets a read through
// (the read must not fail for the count's sake) and defers background work.
func (r *Refresher) spend(ctx context.Context, c storage.Connection, p provider.Profile, kind string) bool {
	limit := p.TokenCallsPerMinute
	if limit <= 0 {
		limit = unlimited
	}
	now := r.now()
	call := storage.ProviderCall{ProviderID: c.ProviderID, Now: now, WindowStart: now.Truncate(budgetWindow),
		Limit: limit, ThrottledLimit: max(1, limit/4)}
	if background(kind) {
		reserve := 0
		if limit > 1 && limit < unlimited {
			reserve = max(1, limit/5)
		}
		call.Limit, call.ThrottledLimit = limit-reserve, 0
	}
	ok, left, err := r.store.TakeProviderCall(ctx, call)
	if err != nil {
		r.log.WarnContext(ctx, "counting a provider call", "provider", c.ProviderName, "err", err)
		ok = !background(kind)
	} else if limit < unlimited {
		r.m.BudgetLeft.WithLabelValues(c.ProviderName).Set(float64(left))
	}
	if !ok {
		r.m.Deferred.WithLabelValues(c.ProviderName, kind).Inc()
		return false
	}
	r.m.ProviderCalls.WithLabelValues(c.ProviderName, kind).Inc()
	return true
}

// deferred ends a refresh the budget put off, releasing the lease: a
// background one is left for a later pass; a read is served the token it
// has while that is valid, else told when the budget opens again.
func (r *Refresher) deferred(ctx context.Context, c storage.Connection, owner string, set tokenset.Set, kind string) (storage.Connection, tokenset.Set, error) {
	r.release(ctx, c, owner, nil)
	if background(kind) {
		return c, tokenset.Set{}, errDeferred
	}
	now := r.now()
	if kind != KindForced && (set.Expiry.IsZero() || set.Expiry.After(now)) {
		return c, set, nil
	}
	return c, tokenset.Set{}, httpapi.Unavailable("the provider's refresh budget is spent; retry later",
		now.Truncate(budgetWindow).Add(budgetWindow).Sub(now), errDeferred)
}

// throttleOn holds background refreshes of the provider back, on every
// replica, after a 429 (or any answer with Retry-After): for the time the
// provider asked, at least a minute.
func (r *Refresher) throttleOn(ctx context.Context, c storage.Connection, err error) {
	var e *exchange.Error
	if !errors.As(err, &e) || (e.StatusCode != http.StatusTooManyRequests && e.RetryAfter <= 0) {
		return
	}
	until := r.now().Add(max(e.RetryAfter, minThrottle))
	if terr := r.store.ThrottleProvider(ctx, c.ProviderID, until); terr != nil {
		r.log.WarnContext(ctx, "recording a provider's rate limit", "provider", c.ProviderName, "err", terr)
		return
	}
	r.log.InfoContext(ctx, "provider rate-limited the broker: background refreshes wait", "provider", c.ProviderName,
		"until", until.UTC().Format(time.RFC3339))
}
