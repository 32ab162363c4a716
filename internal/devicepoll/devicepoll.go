package devicepoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/promreg"
	"github.com/dromos-dev/dromos/internal/secret"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// SlowDownStep is what slow_down adds to the interval (RFC 8628 §3.5).
const SlowDownStep = 5 * time.Second

// MaxBackoffInterval bounds the exponential back-off after failed polls
// (connection timeouts, 5xx, 429): the interval doubles with each one
// (RFC 8628 §3.5) up to this, never below what the provider asked for.
const MaxBackoffInterval = time.Minute

// Options tune the poller; zero fields take the defaults.
type Options struct {
	// Tick is how often Run looks for due grants (default 1 s): a poll is
	// at most this late after its interval.
	Tick time.Duration
	// Lease keeps a claimed grant from other replicas while it is polled;
	// a claimed poll starts only in the lease's first half, so half of it
	// must exceed one poll (two token endpoint attempts; default 2 min).
	Lease time.Duration
	// Batch is how many grants one pass claims (default 50); Parallel how
	// many of them are polled at once (default 8).
	Batch    int
	Parallel int
}

func (o *Options) defaults() {
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
}

// Vault seals and opens device codes.
type Vault interface {
	tokenset.Sealer
	tokenset.Opener
}

// Client polls a token endpoint (exchange.Client).
type Client interface {
	PollDevice(ctx context.Context, ep exchange.Endpoint, deviceCode secret.String) (*exchange.Token, error)
}

// ErrNoProvider is what a Resolve function returns when the provider is
// gone: the grant can never complete.
var ErrNoProvider = errors.New("devicepoll: provider no longer registered")

// Deps are the poller's collaborators.
type Deps struct {
	Store  storage.Storage
	Vault  Vault
	Client Client
	// Resolve returns the token endpoint (with client authentication) of
	// a provider; an error other than ErrNoProvider is retried at the
	// next interval.
	Resolve func(ctx context.Context, providerID string) (exchange.Endpoint, error)
	// Granted stores the token the provider issued for the pending
	// connection, verified like an authorization code's, and makes it
	// active (or failed when the token is refused).
	Granted func(ctx context.Context, conn storage.Connection, ep exchange.Endpoint, tok *exchange.Token)
	// Failed fails the pending connection with reason (access_denied,
	// expired_token…).
	Failed func(ctx context.Context, conn storage.Connection, reason string)
	// Budget, when set, takes one call of the provider's budget before a
	// poll (at background priority); false defers the poll by one
	// interval without calling the provider. A pass asks for the grants
	// polled longest ago first, so a spent budget does not starve the
	// same grants minute after minute.
	Budget func(ctx context.Context, providerID string) bool
	// Throttled, when set, hears of every failed poll (a 429 or an answer
	// with Retry-After throttles the provider's background work).
	Throttled  func(ctx context.Context, providerID string, err error)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Poller polls the token endpoint for device grants.
type Poller struct {
	opts  Options
	d     Deps
	polls *prometheus.CounterVec
}

// New builds a poller.
func New(opts Options, d Deps) (*Poller, error) {
	if d.Store == nil || d.Vault == nil || d.Client == nil || d.Resolve == nil || d.Granted == nil || d.Failed == nil {
		return nil, errors.New("devicepoll: Store, Vault, Client, Resolve, Granted and Failed are required")
	}
	opts.defaults()
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Poller{opts: opts, d: d, polls: promreg.Register(d.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dromos_device_polls_total",
		Help: "Device grant polls of token endpoints by result: pending, slow_down, granted, denied, expired, failed, transient, deferred (the provider's call budget was spent; no call made)."},
		[]string{"result"}))}, nil
}

// CodeAAD is the additional data a device code is sealed with: it binds
// the sealing to its connection (key rotation re-seals with it).
func CodeAAD(connID string) []byte { return []byte("device_code:" + connID) }

func aad(connID string) []byte { return CodeAAD(connID) }

// NewGrant seals the device code of a fresh authorization for the pending
// connection connID. The first poll is due one interval from now.
func (p *Poller) NewGrant(connID, providerID string, auth exchange.DeviceAuthorization, now time.Time) (storage.DeviceGrant, error) {
	sealed, err := p.d.Vault.Seal([]byte(auth.DeviceCode.Reveal()), aad(connID))
	if err != nil {
		return storage.DeviceGrant{}, fmt.Errorf("devicepoll: seal device code: %w", err)
	}
	interval := max(int((auth.Interval+time.Second-1)/time.Second), 1)
	now = now.UTC()
	return storage.DeviceGrant{ConnectionID: connID, ProviderID: providerID, DeviceCode: sealed, IntervalSeconds: interval,
		NextPollAt: now.Add(time.Duration(interval) * time.Second), ExpiresAt: now.Add(auth.ExpiresIn),
		CreatedAt: now, UpdatedAt: now}, nil
}

// Run polls due grants every Tick until ctx ends, and returns only when
// the polls in flight have finished: a token the provider handed over for
// a spent device code must be stored before the store closes.
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.Tick)
	defer t.Stop()
	for {
		if _, err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.d.Logger.WarnContext(ctx, "device poll pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass claims the grants due now, polls each once and returns how many it
// polled. A poll once started finishes even when ctx ends (its answer may
// spend the device code); the claimed grants not yet started when ctx
// ends, or half the lease has passed, are handed back, due at once, for
// any replica.
func (p *Poller) Pass(ctx context.Context) (int, error) {
	now := p.d.Now()
	due, err := p.d.Store.ClaimDeviceGrants(ctx, now, now.Add(p.opts.Lease), p.opts.Batch)
	if err != nil {
		return 0, err
	}
	// Least recently polled first (never polled before all): the order
	// the provider's budget is handed out in.
	slices.SortStableFunc(due, func(a, b storage.DeviceGrant) int { return a.LastPolledAt.Compare(b.LastPolledAt) })
	sem := make(chan struct{}, p.opts.Parallel)
	var wg sync.WaitGroup
	polled := 0
	for _, g := range due {
		sem <- struct{}{}
		// A grant whose turn comes after half its lease (slow providers
		// ahead of it in the batch) is handed back: another replica may
		// claim it once the lease ends, and two polls must not overlap.
		if ctx.Err() != nil || p.d.Now().Sub(now) > p.opts.Lease/2 {
			<-sem
			p.release(context.WithoutCancel(ctx), g, now)
			continue
		}
		// A lapsed code is failed without a call, so without the budget.
		if p.d.Budget != nil && now.Before(g.ExpiresAt) && !p.d.Budget(ctx, g.ProviderID) {
			<-sem
			p.polls.WithLabelValues("deferred").Inc()
			p.reschedule(context.WithoutCancel(ctx), g, g.IntervalSeconds, false)
			continue
		}
		polled++
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.poll(context.WithoutCancel(ctx), g)
		}()
	}
	wg.Wait()
	return polled, nil
}

// release hands back a claimed grant that was not polled: due at the
// claim's time again, so the next pass of any replica takes it (the
// provider's interval had already passed then).
func (p *Poller) release(ctx context.Context, g storage.DeviceGrant, due time.Time) {
	_, err := p.d.Store.UpdateDeviceGrant(ctx, g.ConnectionID, func(cur storage.DeviceGrant) (storage.DeviceGrant, error) {
		cur.NextPollAt = due.UTC()
		return cur, nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		// The lease runs out and another pass polls it then.
		p.d.Logger.WarnContext(ctx, "device poll: releasing an unpolled grant", "connection_id", g.ConnectionID, "err", err)
	}
}

// poll makes one token request for g and acts on the answer.
func (p *Poller) poll(ctx context.Context, g storage.DeviceGrant) {
	log := p.d.Logger.With("connection_id", g.ConnectionID)
	conn, err := p.d.Store.GetConnection(ctx, g.ConnectionID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return // deleted: its grant went with it
	case err != nil:
		log.WarnContext(ctx, "device poll: loading the connection", "err", err)
		p.reschedule(ctx, g, g.IntervalSeconds, false)
		return
	case conn.Status != storage.StatusPending:
		// Finished elsewhere (deleted and recreated, failed by clean-up).
		p.end(ctx, g)
		return
	}
	if !p.d.Now().Before(g.ExpiresAt) {
		p.polls.WithLabelValues("expired").Inc()
		p.fail(ctx, conn, g, exchange.ErrCodeExpiredToken)
		return
	}
	code, err := p.d.Vault.Open(g.DeviceCode, aad(g.ConnectionID))
	if err != nil {
		log.ErrorContext(ctx, "device poll: opening the device code", "err", err)
		p.polls.WithLabelValues("failed").Inc()
		p.fail(ctx, conn, g, "server_error")
		return
	}
	ep, err := p.d.Resolve(ctx, g.ProviderID)
	if errors.Is(err, ErrNoProvider) {
		p.polls.WithLabelValues("failed").Inc()
		p.fail(ctx, conn, g, "unknown_provider")
		return
	}
	if err != nil {
		log.WarnContext(ctx, "device poll: provider endpoints unavailable", "err", err)
		p.polls.WithLabelValues("transient").Inc()
		p.reschedule(ctx, g, g.IntervalSeconds, false)
		return
	}
	tok, err := p.d.Client.PollDevice(ctx, ep, secret.String(code))
	if err == nil {
		p.polls.WithLabelValues("granted").Inc()
		// The grant row goes first: a token the broker then fails to keep
		// must not be asked for again with a spent device code.
		p.end(ctx, g)
		p.d.Granted(ctx, conn, ep, tok)
		return
	}
	var oe *exchange.Error
	errors.As(err, &oe)
	switch {
	case oe != nil && strings.EqualFold(oe.Code, exchange.ErrCodeAuthorizationPending):
		p.polls.WithLabelValues("pending").Inc()
		p.reschedule(ctx, g, g.IntervalSeconds, true)
	case oe != nil && strings.EqualFold(oe.Code, exchange.ErrCodeSlowDown):
		p.polls.WithLabelValues("slow_down").Inc()
		next := g.IntervalSeconds + int(SlowDownStep/time.Second)
		log.InfoContext(ctx, "provider asked to slow down; interval increased", "interval_seconds", next)
		p.reschedule(ctx, g, next, true)
	case oe != nil && strings.EqualFold(oe.Code, exchange.ErrCodeAccessDenied):
		p.polls.WithLabelValues("denied").Inc()
		p.fail(ctx, conn, g, exchange.ErrCodeAccessDenied)
	case oe != nil && strings.EqualFold(oe.Code, exchange.ErrCodeExpiredToken):
		p.polls.WithLabelValues("expired").Inc()
		p.fail(ctx, conn, g, exchange.ErrCodeExpiredToken)
	case exchange.Classify(err) == exchange.ClassTransient:
		// RFC 8628 §3.5: on a connection timeout the client must poll
		// less often, doubling the interval is recommended. The doubled
		// interval is stored like slow_down's, so every replica backs off;
		// the code's expiry still ends the grant.
		p.polls.WithLabelValues("transient").Inc()
		if p.d.Throttled != nil {
			p.d.Throttled(ctx, g.ProviderID, err)
		}
		next := backoff(g.IntervalSeconds)
		log.WarnContext(ctx, "device poll failed; backing off", "class", string(exchange.ClassTransient), "interval_seconds", next, "err", err)
		p.reschedule(ctx, g, next, true)
	default:
		p.polls.WithLabelValues("failed").Inc()
		reason := "exchange_failed"
		if oe != nil && exchange.Classify(err) == exchange.ClassInvalidClient {
			reason = "invalid_client"
		}
		log.WarnContext(ctx, "device poll refused", "class", string(exchange.Classify(err)), "err", err)
		p.fail(ctx, conn, g, reason)
	}
}

// backoff doubles a poll interval (in seconds) up to MaxBackoffInterval;
// an interval already longer is kept.
func backoff(interval int) int {
	limit := int(MaxBackoffInterval / time.Second)
	if interval >= limit {
		return interval
	}
	return min(2*max(interval, 1), limit)
}

// reschedule stores the next poll one interval after now (the provider's
// answer, when polled says a request was made), or at the code's expiry
// when that comes first.
func (p *Poller) reschedule(ctx context.Context, g storage.DeviceGrant, interval int, polled bool) {
	done := p.d.Now().UTC()
	_, err := p.d.Store.UpdateDeviceGrant(ctx, g.ConnectionID, func(cur storage.DeviceGrant) (storage.DeviceGrant, error) {
		cur.IntervalSeconds = max(interval, cur.IntervalSeconds)
		cur.NextPollAt, cur.UpdatedAt = done.Add(time.Duration(cur.IntervalSeconds)*time.Second), done
		if cur.NextPollAt.After(cur.ExpiresAt) {
			// Due no later than the code's expiry, when the grant ends
			// with expired_token (without a call), before the pending
			// clean-up could end it as consent_expired.
			cur.NextPollAt = cur.ExpiresAt
		}
		if polled {
			cur.Polls++
			cur.LastPolledAt = done
		}
		return cur, nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		// The lease runs out and another pass polls again.
		p.d.Logger.WarnContext(ctx, "device poll: rescheduling", "connection_id", g.ConnectionID, "err", err)
	}
}

func (p *Poller) fail(ctx context.Context, conn storage.Connection, g storage.DeviceGrant, reason string) {
	p.end(ctx, g)
	p.d.Failed(ctx, conn, reason)
}

func (p *Poller) end(ctx context.Context, g storage.DeviceGrant) {
	if err := p.d.Store.DeleteDeviceGrant(ctx, g.ConnectionID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.d.Logger.WarnContext(ctx, "device poll: deleting the grant", "connection_id", g.ConnectionID, "err", err)
	}
}
