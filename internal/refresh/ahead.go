package refresh

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// AheadOptions tune a refresh-ahead pass; zero values take defaults.
type AheadOptions struct {
	Interval time.Duration // between passes (15 s); refreshes are spread over a tenth of it
	Window   time.Duration // refresh tokens expiring within this (2 min; at most a third of their lifetime)
	// ReadWindow: only connections whose token was read (or, never read,
	// that were created) within it are refreshed ahead (1 h: one lifetime
	// of the usual access token); the others are refreshed when next read.
	ReadWindow  time.Duration
	Concurrency int // refreshes at once (4), grown with the batch
	// Batch is the connections a pass claims (50) while there is no
	// backlog; a pass that finds a full batch doubles it for the next one,
	// up to MaxBatch (1,000), and one that finds less than half halves it.
	Batch    int
	MaxBatch int
}

// Defaults fills in zero values.
func (o *AheadOptions) Defaults() {
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 2 * time.Minute
	}
	if o.ReadWindow <= 0 {
		o.ReadWindow = DefaultReadWindow
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.MaxBatch < o.Batch {
		o.MaxBatch = max(o.Batch, 1000)
	}
}

// nextBatch is the batch after a pass that claimed got connections with a
// batch of cur: doubled when the pass was full (a backlog), halved when it
// was less than half full, within [opts.Batch, opts.MaxBatch].
func nextBatch(cur, got int, opts AheadOptions) int {
	switch {
	case got >= cur:
		cur *= 2
	case got < cur/2:
		cur /= 2
	}
	return min(max(cur, opts.Batch), opts.MaxBatch)
}

// claimFor is how long a pass holds the connections it claimed: other
// replicas' passes leave them alone meanwhile. A pass ends when its
// refreshes do, well within it; a crashed broker's claims simply lapse.
func claimFor(opts AheadOptions) time.Duration {
	return max(2*time.Minute, 4*opts.Interval)
}

// DefaultReadWindow is AheadOptions.ReadWindow's default.
const DefaultReadWindow = time.Hour

// keepAliveShare: a connection of a provider whose refresh tokens lapse
// when idle is refreshed once it has gone unrefreshed for this share of
// the idle lifetime (two thirds: 60 of Microsoft's 90 days), leaving a
// third of it for retries after provider trouble.
const keepAliveNum, keepAliveDen = 2, 3

// keepAliveAfter is how long a connection of a provider with refresh
// token idle lifetime idle may go unrefreshed.
func keepAliveAfter(idle time.Duration) time.Duration {
	return idle / keepAliveDen * keepAliveNum
}

// IdleLifetimes lists the providers whose refresh tokens lapse when
// unused, with how long they last unused (provider id → lifetime).
type IdleLifetimes interface {
	IdleLifetimes(ctx context.Context) (map[string]time.Duration, error)
}

// Ahead runs one refresh-ahead pass: tokens about to expire of connections
// read recently, and grants about to lapse at providers whose refresh
// tokens die when idle, are refreshed before an agent has to wait for it.
// It returns how many connections it refreshed. Made for many replicas:
// a pass claims its connections (see storage.DueFilter.ClaimUntil), so
// concurrent passes split the work, and each refresh still takes the
// connection's lease.
func (r *Refresher) Ahead(ctx context.Context, opts AheadOptions) (int, error) {
	opts.Defaults()
	now := r.now()
	idle := map[string]time.Duration{}
	if r.idle != nil {
		var err error
		if idle, err = r.idle.IdleLifetimes(ctx); err != nil {
			return 0, err
		}
	}
	batch := int(r.batch.Load())
	if batch < opts.Batch || batch > opts.MaxBatch {
		batch = opts.Batch
	}
	f := storage.DueFilter{Now: now, ExpiringBefore: now.Add(opts.Window), ReadSince: now.Add(-opts.ReadWindow),
		Limit: batch, ClaimUntil: now.Add(claimFor(opts))}
	for id, life := range idle {
		f.KeepAlive = append(f.KeepAlive, storage.KeepAlive{ProviderID: id, UntouchedBefore: now.Add(-keepAliveAfter(life))})
	}
	var ids []string
	err := r.timeDB(func() (err error) {
		ids, err = r.store.DueForRefresh(ctx, f)
		return err
	})
	if err != nil {
		return 0, err
	}
	r.m.Queue.Set(float64(len(ids)))
	r.batch.Store(int64(nextBatch(batch, len(ids), opts)))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		// Concurrency grows with the batch (8 times at most), so that a
		// larger batch does not make a pass proportionally longer.
		sem = make(chan struct{}, min(opts.Concurrency*batch/opts.Batch, 8*opts.Concurrency))
	)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// Spread refreshes so a burst of expiries does not hit a
			// provider at once.
			if spread := opts.Interval / 10; spread > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(rand.N(spread)):
				}
			}
			if r.ahead(ctx, id, opts, idle) {
				mu.Lock()
				done++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Done with them: a connection that was not due yet, or failed, is
	// due again at its next_refresh_at, not when the claim runs out.
	if err := r.timeDB(func() error { return r.store.ReleaseClaims(context.WithoutCancel(ctx), ids) }); err != nil {
		r.log.WarnContext(ctx, "releasing refresh-ahead claims", "connections", len(ids), "err", err)
	}
	return done, nil
}

func (r *Refresher) ahead(ctx context.Context, id string, opts AheadOptions, idle map[string]time.Duration) bool {
	var c storage.Connection
	var tok storage.Token
	err := r.timeDB(func() (err error) {
		if c, err = r.store.GetConnection(ctx, id); err != nil || c.Status != storage.StatusActive {
			return errChanged
		}
		tok, err = r.store.GetToken(ctx, id)
		return err
	})
	if err != nil {
		return false
	}
	last := c.LastRefreshAt
	if last.IsZero() {
		last = c.CreatedAt
	}
	// keepAlive is when the grant must be used again; zero for a provider
	// whose refresh tokens do not lapse when idle.
	var keepAlive time.Time
	if life, ok := idle[c.ProviderID]; ok && life > 0 {
		keepAlive = last.Add(keepAliveAfter(life))
	}
	if (keepAlive.IsZero() || !r.now().After(keepAlive)) && !r.due(opts.Window, tok) {
		// Picked because its expiry is within the window, but the window
		// is bounded by the token's lifetime and it is not due yet: say
		// when it is, so that passes leave it alone until then instead of
		// picking it again every time.
		next := dueAt(opts.Window, tok)
		if next.IsZero() || (!keepAlive.IsZero() && keepAlive.Before(next)) {
			next = keepAlive
		}
		if !next.IsZero() {
			_ = r.timeDB(func() error { r.planNext(ctx, c, tok, next); return nil })
		}
		return false
	}
	// A grant past its keep-alive age is a keep-alive refresh even when its
	// token is due too: an idle connection's token has long expired, and
	// counting it as ahead would hide the keep-alive share (the scale
	// benchmark's provider saw them as keep-alive, the metric as ahead).
	kind := KindAhead
	if !keepAlive.IsZero() && r.now().After(keepAlive) {
		kind = KindKeepAlive
	}
	// Once started, a refresh runs to its end even when the worker is
	// stopping: cut short between the provider's answer and the write, a
	// rotated refresh token would be lost. The exchange client's timeouts
	// bound it.
	// A flight of its own: a reader must not share a background refresh
	// that the provider budget may put off; the lease still makes the two
	// take turns.
	after, _, err := r.flights.do("ahead:"+id, func() (storage.Connection, tokenset.Set, error) {
		return r.shared(context.WithoutCancel(ctx), id, tok.UpdatedAt, false, kind)
	})
	if errors.Is(err, errDeferred) {
		return false // counted in the deferred metric
	}
	if err != nil {
		r.log.InfoContext(ctx, "refresh-ahead did not refresh", "connection_id", id, "err", err)
		return false
	}
	// Counted only when a refresh happened (here or elsewhere): not for a
	// token without refresh token, nor a failure served from the old one.
	return after.LastRefreshAt.After(c.LastRefreshAt)
}

// planNext records next as the connection's next refresh time, unless
// something changed since the pass read it: a new token, a lease, a
// provider failure's backoff (which owns NextRefreshAt then).
func (r *Refresher) planNext(ctx context.Context, c storage.Connection, tok storage.Token, next time.Time) {
	if c.NextRefreshAt.Equal(next) {
		return
	}
	_, err := r.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, t *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if cur.Status != storage.StatusActive || t == nil || !t.UpdatedAt.Equal(tok.UpdatedAt) ||
			cur.RefreshLeaseOwner != "" || cur.LastErrorClass != "" {
			return cur, storage.TokenChange{}, errChanged
		}
		cur.NextRefreshAt = next.UTC()
		return cur, storage.TokenChange{}, nil
	})
	if err != nil && !errors.Is(err, errChanged) {
		r.log.WarnContext(ctx, "recording the next refresh time", "connection_id", c.ID, "err", err)
	}
}

// timeDB runs a database step of a refresh-ahead pass and adds its time to
// AheadDBSeconds.
func (r *Refresher) timeDB(step func() error) error {
	start := r.now()
	err := step()
	if r.m.AheadDBSeconds != nil {
		r.m.AheadDBSeconds.Add(r.now().Sub(start).Seconds())
	}
	return err
}
