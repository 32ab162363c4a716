package refresh

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// AheadOptions tune a refresh-ahead pass; zero values take defaults.
type AheadOptions struct {
	Interval    time.Duration // between passes (15 s); refreshes are spread over a tenth of it
	Window      time.Duration // refresh tokens expiring within this (2 min)
	KeepAlive   time.Duration // refresh connections untouched this long (24 h)
	Concurrency int           // refreshes at once (4)
	Batch       int           // connections per pass (50)
}

// Defaults fills in zero values.
func (o *AheadOptions) Defaults() {
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 2 * time.Minute
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 24 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
}

// Ahead runs one refresh-ahead pass: tokens about to expire, and grants
// untouched for the keep-alive period, are refreshed before an agent has to
// wait for it. It returns how many connections it refreshed. Safe with
// many replicas: each refresh claims the connection's lease first.
func (r *Refresher) Ahead(ctx context.Context, opts AheadOptions) (int, error) {
	opts.Defaults()
	now := r.now()
	ids, err := r.store.DueForRefresh(ctx, now, now.Add(opts.Window), now.Add(-opts.KeepAlive), opts.Batch)
	if err != nil {
		return 0, err
	}
	r.m.Queue.Set(float64(len(ids)))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		sem  = make(chan struct{}, opts.Concurrency)
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
			if r.ahead(ctx, id, opts) {
				mu.Lock()
				done++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return done, nil
}

func (r *Refresher) ahead(ctx context.Context, id string, opts AheadOptions) bool {
	c, err := r.store.GetConnection(ctx, id)
	if err != nil || c.Status != storage.StatusActive {
		return false
	}
	tok, err := r.store.GetToken(ctx, id)
	if err != nil {
		return false
	}
	last := c.LastRefreshAt
	if last.IsZero() {
		last = c.CreatedAt
	}
	want := r.expiringWithin(opts.Window)
	if r.now().Sub(last) > opts.KeepAlive {
		want = func(time.Time) bool { return true }
	}
	if !want(tok.ExpiresAt) {
		return false
	}
	// Once started, a refresh runs to its end even when the worker is
	// stopping: cut short between the provider's answer and the write, a
	// rotated refresh token would be lost. The exchange client's timeouts
	// bound it.
	after, _, err := r.flights.do(id, func() (storage.Connection, tokenset.Set, error) {
		return r.shared(context.WithoutCancel(ctx), id, tok.UpdatedAt, want, false)
	})
	if err != nil {
		r.log.InfoContext(ctx, "refresh-ahead did not refresh", "connection_id", id, "err", err)
		return false
	}
	// Counted only when a refresh happened (here or elsewhere): not for a
	// token without refresh token, nor a failure served from the old one.
	return after.LastRefreshAt.After(c.LastRefreshAt)
}
