package broker

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// WorkerOptions tune the background worker; zero values take defaults.
type WorkerOptions struct {
	Interval    time.Duration // between passes (15 s)
	Window      time.Duration // refresh tokens expiring within this (2 min)
	KeepAlive   time.Duration // refresh connections untouched this long (24 h)
	Concurrency int           // refreshes at once (4)
	Batch       int           // connections per pass (50)
}

func (o *WorkerOptions) defaults() {
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

// RunWorker refreshes tokens ahead of expiry (so agents rarely wait on a
// provider), keeps idle grants alive, and fails pending consents that ran
// out, until ctx ends. Safe with many replicas: each refresh claims the
// connection's lease first.
func (b *Broker) RunWorker(ctx context.Context, opts WorkerOptions) {
	opts.defaults()
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	var lastCount time.Time
	for {
		if b.now().Sub(lastCount) >= time.Hour {
			lastCount = b.now()
			if n, err := b.KeyUsage(ctx); err == nil {
				b.m.oldKeyRows.Set(float64(n))
			}
		}
		if _, err := b.RefreshDue(ctx, opts); err != nil && ctx.Err() == nil {
			b.log.WarnContext(ctx, "refresh-ahead pass failed", "err", err)
		}
		if _, err := b.CleanupPending(ctx); err != nil && ctx.Err() == nil {
			b.log.WarnContext(ctx, "pending clean-up failed", "err", err)
		}
		b.pruneAudit(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshDue runs one refresh-ahead pass and returns how many connections
// it refreshed.
func (b *Broker) RefreshDue(ctx context.Context, opts WorkerOptions) (int, error) {
	opts.defaults()
	now := b.now()
	ids, err := b.store.DueForRefresh(ctx, now, now.Add(opts.Window), now.Add(-opts.KeepAlive), opts.Batch)
	if err != nil {
		return 0, err
	}
	b.m.refreshQueue.Set(float64(len(ids)))
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
			if b.refreshAhead(ctx, id, opts) {
				mu.Lock()
				done++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return done, nil
}

func (b *Broker) refreshAhead(ctx context.Context, id string, opts WorkerOptions) bool {
	c, err := b.store.GetConnection(ctx, id)
	if err != nil || c.Status != storage.StatusActive {
		return false
	}
	tok, err := b.store.GetToken(ctx, id)
	if err != nil {
		return false
	}
	last := c.LastRefreshAt
	if last.IsZero() {
		last = c.CreatedAt
	}
	want := b.expiringWithin(opts.Window)
	if b.now().Sub(last) > opts.KeepAlive {
		want = func(time.Time) bool { return true }
	}
	if !want(tok.ExpiresAt) {
		return false
	}
	_, _, err = b.flights.do(id, func() (storage.Connection, tokenSet, error) {
		return b.refreshShared(ctx, id, tok.UpdatedAt, want, false)
	})
	if err != nil {
		b.log.InfoContext(ctx, "refresh-ahead did not refresh", "connection_id", id, "err", err)
		return false
	}
	return true
}

var errNoLongerPending = errors.New("no longer pending")

// exchangeGrace is how long a connection may stay exchanging.
const exchangeGrace = 2 * time.Minute

// CleanupPending fails consents whose callback never came (and exchanges a
// crashed broker left behind), deleting their PKCE material.
func (b *Broker) CleanupPending(ctx context.Context) (int, error) {
	n := 0
	for _, st := range []storage.ConnectionStatus{storage.StatusPending, storage.StatusExchanging} {
		conns, err := b.store.ListConnections(ctx, storage.ConnectionFilter{Status: st, Limit: 500})
		if err != nil {
			return n, err
		}
		for _, c := range conns {
			deadline := c.ExpiresAt
			reason := "consent_expired"
			if st == storage.StatusExchanging {
				// An exchange takes seconds (two 10 s attempts at most); one
				// still running after exchangeGrace belonged to a broker that
				// died mid-callback.
				deadline, reason = c.UpdatedAt.Add(exchangeGrace), "exchange_interrupted"
			}
			if b.now().Before(deadline) {
				continue
			}
			_, err := b.store.UpdateConnection(ctx, c.ID, func(cur storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				if cur.Status != st {
					return cur, storage.TokenChange{}, errNoLongerPending
				}
				cur.Status, cur.StatusReason, cur.PKCEVerifier, cur.UpdatedAt = storage.StatusFailed, reason, nil, b.now().UTC()
				return cur, storage.TokenChange{Delete: true}, nil
			})
			if err == nil {
				n++
			} else if !errors.Is(err, errNoLongerPending) && !errors.Is(err, storage.ErrNotFound) {
				return n, err
			}
		}
	}
	return n, nil
}
