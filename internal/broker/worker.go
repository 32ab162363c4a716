package broker

import (
	"context"
	"errors"
	"time"

	"github.com/dromos-dev/dromos/internal/refresh"
	"github.com/dromos-dev/dromos/internal/storage"
)

// WorkerOptions tune the background worker's refresh-ahead pass.
type WorkerOptions = refresh.AheadOptions

// RunWorker refreshes tokens ahead of expiry (so agents rarely wait on a
// provider), keeps idle grants alive, fails pending consents and user
// confirmations that ran out (revoking the latter's grants), delivers
// lifecycle webhooks and retries failed revocations, until ctx ends. Safe
// with many replicas: each refresh claims the connection's lease first,
// each lapsed confirmation is claimed once.
func (b *Broker) RunWorker(ctx context.Context, opts WorkerOptions) {
	opts.Defaults()
	// Webhook messages go out alongside, on their own goroutines, so a
	// slow receiver never holds up a refresh.
	stopWebhooks := b.runWebhooks(ctx)
	defer stopWebhooks()
	// Revocations keep their own pace (their backoff may be shorter
	// than the refresh pass).
	go b.revoker.Run(ctx)
	// Device grants are polled at their providers' intervals, which are
	// seconds, not the refresh pass's minutes. RunWorker waits for the
	// polls in flight: a token answered for a spent device code must be
	// stored before the caller closes the store.
	devicesDone := make(chan struct{})
	go func() { defer close(devicesDone); b.devices.Run(ctx) }()
	defer func() { <-devicesDone }()
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	var lastCount time.Time
	bound := false
	for {
		if !bound {
			// Providers registered before the secret binding are moved to
			// it once; one whose issuer does not answer is retried.
			left, err := b.providers.Rebind(ctx)
			bound = err == nil && left == 0
		}
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
		if _, err := b.SweepConfirmations(ctx); err != nil && ctx.Err() == nil {
			b.log.WarnContext(ctx, "confirmation sweep failed", "err", err)
		}
		b.pruneAudit(ctx)
		b.purgeConnections(ctx)
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
	return b.refresher.Ahead(ctx, opts)
}

// PollDevices runs one pass of the device grant poller: every grant due
// now is polled once. It returns how many were polled.
func (b *Broker) PollDevices(ctx context.Context) (int, error) {
	return b.devices.Pass(ctx)
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
