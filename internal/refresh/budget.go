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
	// KindExchange is a user's authorization code redeemed at the
	// callback: not a refresh, but the same token endpoint and budget.
	KindExchange = "exchange"
	// KindDevicePoll is not a refresh either: a device grant's poll of the
	// token endpoint (package devicepoll), counted in the same budget.
	KindDevicePoll = "device_poll"
)

// budgetWindow is the window provider calls are counted in.
const budgetWindow = time.Minute

// minThrottle is how long a provider's 429 without Retry-After keeps
// background refreshes away.
const minThrottle = time.Minute

// unlimited stands for "no cap" in the shared count, which still runs so
// that a provider's 429 holds background work back for every provider.
const unlimited = 1 << 30

// exchangeMaxWait bounds how long a code exchange waits for a slot when
// the budget is spent: the user is at the browser, the code lives minutes
// at most and the callback's answer must come within the server's write
// timeout (60 s).
const exchangeMaxWait = 30 * time.Second

func background(kind string) bool {
	return kind == KindAhead || kind == KindKeepAlive || kind == KindDevicePoll
}

// TakeBackgroundCall takes one call from the provider's budget
// (token_calls_per_minute) for background work that is not a refresh, a
// device grant's poll: at background priority, so it never uses the
// share kept for agents' reads nor calls a provider throttled after a
// 429. false means wait for a later window.
func (r *Refresher) TakeBackgroundCall(ctx context.Context, providerID, providerName string, p provider.Profile) bool {
	return r.spend(ctx, providerID, providerName, p, KindDevicePoll)
}

// spend takes one call from the provider's budget, shared by every replica
// through the database. Background refreshes may use the budget less the
// share kept for agents' reads (a fifth, at least one call), and nothing
// while the provider is throttled after a 429; reads get the whole budget,
// a quarter of it while throttled. A failure to count lets a read through
// (the read must not fail for the count's sake) and defers background work.
func (r *Refresher) spend(ctx context.Context, providerID, providerName string, p provider.Profile, kind string) bool {
	limit := p.TokenCallsPerMinute
	if limit <= 0 {
		limit = unlimited
	}
	now := r.now()
	call := storage.ProviderCall{ProviderID: providerID, Now: now, WindowStart: now.Truncate(budgetWindow),
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
		r.log.WarnContext(ctx, "counting a provider call", "provider", providerName, "err", err)
		ok = !background(kind)
	} else if limit < unlimited {
		r.m.BudgetLeft.WithLabelValues(providerName).Set(float64(left))
	}
	if !ok {
		r.m.Deferred.WithLabelValues(providerName, kind).Inc()
		return false
	}
	r.m.ProviderCalls.WithLabelValues(providerName, kind).Inc()
	return true
}

// TakeExchange counts a code exchange at the provider against its budget
// before the broker redeems the code. An exchange has the priority of an
// agent's read (a user is waiting): the whole budget, background work
// yielding to it. When the budget is spent it waits for the next window
// if that opens within exchangeMaxWait and takes a slot there; failing
// that it goes ahead counted over the budget, so background work still
// yields to it: a code is single-use and short-lived, and deferring it
// would make the user start the consent again. It never fails.
func (r *Refresher) TakeExchange(ctx context.Context, providerID, providerName string, p provider.Profile) {
	if r.spend(ctx, providerID, providerName, p, KindExchange) {
		return
	}
	start := r.now()
	next := start.Truncate(budgetWindow).Add(budgetWindow)
	if next.Sub(start) <= exchangeMaxWait {
		// Wait on the broker's clock (the budget's windows are counted on
		// it), polling, then try the new window once.
		for r.now().Before(next) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(leasePoll*4, next.Sub(r.now()))):
			}
		}
		if r.spend(ctx, providerID, providerName, p, KindExchange) {
			return
		}
	}
	// Over the budget: counted all the same (the limit cannot refuse it).
	_, _, err := r.store.TakeProviderCall(ctx, storage.ProviderCall{ProviderID: providerID, Now: r.now(),
		WindowStart: r.now().Truncate(budgetWindow), Limit: unlimited, ThrottledLimit: unlimited})
	if err != nil {
		r.log.WarnContext(ctx, "counting a provider call", "provider", providerName, "err", err)
	}
	r.m.ProviderCalls.WithLabelValues(providerName, KindExchange).Inc()
	r.log.WarnContext(ctx, "code exchange went ahead over the provider's call budget", "provider", providerName,
		"waited", r.now().Sub(start).String())
}

// ProviderAnswered lowers the provider's budget for background work, on
// every replica, when err is a 429 (or carries Retry-After) from a call
// the broker made outside a refresh (a code exchange, a device poll).
func (r *Refresher) ProviderAnswered(ctx context.Context, providerID, providerName string, err error) {
	r.throttleOn(ctx, providerID, providerName, err)
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
func (r *Refresher) throttleOn(ctx context.Context, providerID, providerName string, err error) {
	var e *exchange.Error
	if !errors.As(err, &e) || (e.StatusCode != http.StatusTooManyRequests && e.RetryAfter <= 0) {
		return
	}
	until := r.now().Add(max(e.RetryAfter, minThrottle))
	if terr := r.store.ThrottleProvider(ctx, providerID, until); terr != nil {
		r.log.WarnContext(ctx, "recording a provider's rate limit", "provider", providerName, "err", terr)
		return
	}
	r.log.InfoContext(ctx, "provider rate-limited the broker: background refreshes wait", "provider", providerName,
		"until", until.UTC().Format(time.RFC3339))
}
