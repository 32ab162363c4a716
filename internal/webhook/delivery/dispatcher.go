package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/netguard"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/webhook"
)

// Defaults of Config.
const (
	DefaultInterval     = time.Second
	DefaultTimeout      = 10 * time.Second
	DefaultWorkers      = 16
	DefaultDisableAfter = 5 * 24 * time.Hour
	// maxResponseRead is how much of an answer is read (and dropped) so
	// the connection can be reused; the rest is not read at all.
	maxResponseRead = 4 << 10
)

// Config tunes a Dispatcher.
type Config struct {
	// Owner names this replica in leases (host and pid by default).
	Owner string
	// Interval is how often the queue is polled when it was empty.
	Interval time.Duration
	// Timeout bounds one attempt, from dial to the answer's status line.
	Timeout time.Duration
	// Workers bounds the attempts in flight.
	Workers int
	// Schedule is the wait before each retry (DefaultSchedule).
	Schedule []time.Duration
	// MaxWait, when set, caps each wait of the schedule (tests and
	// impatient deployments); the number of attempts stays the same.
	MaxWait time.Duration
	// DisableAfter disables an endpoint that has failed every attempt
	// for that long (0: DefaultDisableAfter; negative: never).
	DisableAfter time.Duration
}

// Secrets opens an endpoint's signing secrets at a time.
type Secrets interface {
	Secrets(e storage.WebhookEndpoint, now time.Time) ([]webhook.Secret, error)
}

// Deps are a Dispatcher's collaborators.
type Deps struct {
	Store   storage.Storage
	Secrets Secrets
	// Client sends the messages; build it with NewClient so every dial
	// passes the SSRF guard and redirects are refused.
	Client     *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// Jitter returns a number in [0, 1) (nil: math/rand).
	Jitter func() float64
	// Audit records an endpoint being disabled (nil: not recorded).
	Audit func(context.Context, storage.AuditEvent)
}

// Dispatcher delivers queued webhook messages. Safe for concurrent use;
// run one per process.
type Dispatcher struct {
	cfg Config
	d   Deps
	m   *metrics
	sem chan struct{}
}

// New returns a Dispatcher.
func New(cfg Config, d Deps) (*Dispatcher, error) {
	if d.Store == nil || d.Secrets == nil || d.Client == nil {
		return nil, errors.New("delivery: Store, Secrets and Client are required")
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Jitter == nil {
		d.Jitter = randJitter
	}
	if d.Audit == nil {
		d.Audit = func(context.Context, storage.AuditEvent) {}
	}
	return &Dispatcher{cfg: cfg, d: d, m: newMetrics(d.Registerer), sem: make(chan struct{}, cfg.Workers)}, nil
}

// lease is how long a claim lasts: longer than an attempt plus recording
// it, so a live replica never loses a lease it is using; a dead replica's
// lease runs out after it and another replica sends the message again.
func (x *Dispatcher) lease() time.Duration { return x.cfg.Timeout + max(x.cfg.Timeout, 5*time.Second) }

// Run delivers until ctx ends, then waits for attempts in flight.
func (x *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	var lastStats time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := x.Pass(ctx, &wg)
		if err != nil && ctx.Err() == nil {
			x.d.Logger.WarnContext(ctx, "webhook delivery pass failed", "err", err)
		}
		if now := x.d.Now(); now.Sub(lastStats) >= 5*time.Second {
			lastStats = now
			x.updateStats(ctx)
		}
		wait := x.cfg.Interval
		if n > 0 {
			wait = 0 // more may be due: claim again as soon as a worker frees up
		}
		t.Reset(wait)
	}
}

// Pass claims as many due deliveries as there are free workers and starts
// them; it returns how many it started. wg tracks the attempts.
func (x *Dispatcher) Pass(ctx context.Context, wg *sync.WaitGroup) (int, error) {
	// Take one worker slot before claiming, so a claim never outnumbers
	// the workers that will send it (a leased delivery waiting for a
	// worker would only age).
	select {
	case x.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	free := 1
fill:
	for free < x.cfg.Workers {
		select {
		case x.sem <- struct{}{}:
			free++
		default:
			break fill
		}
	}
	now := x.d.Now()
	cds, err := x.d.Store.ClaimWebhookDeliveries(ctx, x.cfg.Owner, now, now.Add(x.lease()), free)
	for range free - len(cds) {
		<-x.sem
	}
	if err != nil {
		return 0, err
	}
	for _, cd := range cds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-x.sem }()
			// An attempt that started finishes and is recorded even when
			// the process is shutting down.
			x.attempt(context.WithoutCancel(ctx), cd)
		}()
	}
	return len(cds), nil
}

func (x *Dispatcher) updateStats(ctx context.Context) {
	n, oldest, err := x.d.Store.WebhookQueueStats(ctx)
	if err != nil {
		return
	}
	x.m.depth.Set(float64(n))
	age := 0.0
	if !oldest.IsZero() {
		age = max(x.d.Now().Sub(oldest).Seconds(), 0)
	}
	x.m.oldest.Set(age)
}

// outcome is one attempt's result.
type outcome struct {
	status  int
	latency time.Duration
	class   string // "" when delivered
}

// attempt sends one message and records the outcome.
func (x *Dispatcher) attempt(ctx context.Context, cd storage.ClaimedDelivery) {
	out := x.send(ctx, cd)
	now := x.d.Now()
	a := storage.WebhookAttempt{Owner: x.cfg.Owner, At: now, Latency: out.latency, StatusCode: out.status,
		Error: out.class, Delivered: out.class == ""}
	result := "delivered"
	if !a.Delivered {
		next, ok := nextAttempt(x.cfg.Schedule, cd.Delivery.Attempts+1, now, x.d.Jitter())
		if x.cfg.MaxWait > 0 && next.Sub(now) > x.cfg.MaxWait {
			next = now.Add(x.cfg.MaxWait)
		}
		a.NextAttemptAt, a.GiveUp = next, !ok
		if x.cfg.DisableAfter > 0 {
			a.DisableIfFailingSince = now.Add(-x.cfg.DisableAfter)
		}
		result = "retry"
		if a.GiveUp {
			result = "failed"
		}
	}
	disabled, err := x.d.Store.FinishWebhookAttempt(ctx, cd.Delivery.ID, a)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Another replica took the lease over (this attempt outlived
		// it) or the endpoint was deleted: its record stands.
		x.m.deliveries.WithLabelValues("lease_lost").Inc()
		return
	case err != nil:
		// The lease runs out and the delivery is sent again: at least
		// once.
		x.d.Logger.WarnContext(ctx, "recording a webhook attempt failed", "delivery", cd.Delivery.ID, "err", err)
		return
	}
	x.m.deliveries.WithLabelValues(result).Inc()
	if !a.Delivered {
		x.d.Logger.InfoContext(ctx, "webhook delivery failed", "delivery", cd.Delivery.ID, "endpoint", cd.Endpoint.ID,
			"event", cd.Event.ID, "attempt", cd.Delivery.Attempts+1, "status", out.status, "error", out.class, "gave_up", a.GiveUp)
	}
	if disabled {
		x.m.disabled.Inc()
		x.d.Logger.WarnContext(ctx, "webhook endpoint disabled: failing too long", "endpoint", cd.Endpoint.ID,
			"owner", cd.Endpoint.Owner, "failing_for", x.cfg.DisableAfter.String())
		x.d.Audit(ctx, storage.AuditEvent{Time: now.UTC(), Type: "webhook.endpoint_disabled", Actor: cd.Endpoint.Owner,
			Detail: map[string]string{"endpoint_id": cd.Endpoint.ID, "reason": "failing"}})
	}
}

// Body returns the JSON body of an event.
func Body(ev storage.LifecycleEvent) ([]byte, error) {
	return webhook.Encode(webhook.Event{Type: webhook.EventType(ev.Type), Timestamp: ev.OccurredAt, Data: webhook.Connection{
		ConnectionID: ev.ConnectionID, WorkspaceID: ev.WorkspaceID, ClientName: ev.ClientName, UserID: ev.UserID,
		ProviderName: ev.ProviderName, Status: string(ev.Status), Reason: ev.Reason, Scopes: ev.Scopes,
		CreatedAt: ev.ConnectionCreatedAt, UpdatedAt: ev.ConnectionUpdatedAt,
	}})
}

// send makes one attempt. Error classes name what went wrong without the
// URL, the answer or any secret.
func (x *Dispatcher) send(ctx context.Context, cd storage.ClaimedDelivery) outcome {
	now := x.d.Now()
	body, err := Body(cd.Event)
	if err != nil {
		return outcome{class: "encode"}
	}
	secrets, err := x.d.Secrets.Secrets(cd.Endpoint, now)
	if err != nil {
		x.d.Logger.ErrorContext(ctx, "webhook secret cannot be opened", "endpoint", cd.Endpoint.ID, "err", err)
		return outcome{class: "secret"}
	}
	h, err := webhook.Sign(cd.Event.ID, now, body, secrets...)
	if err != nil {
		return outcome{class: "sign"}
	}
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cd.Endpoint.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{class: "bad_url"}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Dromos-Webhooks/1")
	resp, err := x.d.Client.Do(req)
	latency := x.d.Now().Sub(now)
	if err != nil {
		return outcome{latency: latency, class: errorClass(err)}
	}
	// Read a little so a small answer frees the connection for reuse;
	// never more, so a 50 MB answer costs nothing.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	resp.Body.Close()
	out := outcome{status: resp.StatusCode, latency: latency}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		out.class = "redirect"
	default:
		out.class = "status"
	}
	return out
}

func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, netguard.ErrBlocked):
		return "blocked_address"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout"
	default:
		return "connect"
	}
}
