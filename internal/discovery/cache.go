package discovery

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dromos-dev/dromos/internal/tracing"
)

// Defaults for zero Options fields.
const (
	DefaultTTL           = time.Hour
	DefaultTimeout       = 10 * time.Second
	DefaultMaxBody       = 1 << 20
	DefaultRetryInterval = 30 * time.Second
)

// Options configures a Cache. Zero fields take the defaults above.
type Options struct {
	// HTTPClient makes the requests. The Cache uses a copy that never follows
	// redirects, so the caller's client is not modified.
	HTTPClient *http.Client
	// Now is the clock; it decides freshness and measures fetch duration.
	Now func() time.Time
	// TTL is how long a document counts as fresh. A background refresh
	// starts once a copy is older than 80% of it.
	TTL time.Duration
	// Timeout bounds one discovery (both documents when falling back).
	Timeout time.Duration
	// MaxBody is the largest document accepted, in bytes.
	MaxBody int64
	// RetryInterval is the least time between two attempts for the same
	// issuer after a failure, so an outage does not turn every Get into a
	// request.
	RetryInterval time.Duration
	Logger        *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Tracer, when set, records a span per fetch of an issuer's metadata.
	Tracer trace.Tracer
}

// Cache holds one metadata document per issuer. It is safe for concurrent
// use.
type Cache struct {
	tracer  trace.Tracer
	client  *http.Client
	now     func() time.Time
	ttl     time.Duration
	timeout time.Duration
	maxBody int64
	retry   time.Duration
	log     *slog.Logger
	metrics *Metrics

	// Test hooks; set before first use.
	afterRefresh func(issuer string, err error)
	onJoin       func(issuer string)

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	md        Metadata
	ok        bool      // md is a good copy
	fetchedAt time.Time // when md was fetched
	attemptAt time.Time // start of the latest attempt by Get
	lastErr   error     // outcome of the latest attempt by Get; nil after success
	// refreshing is set while a background refresh runs.
	refreshing bool
	// first is the in-flight fetch while no good copy exists yet.
	first *flight
}

type flight struct {
	done chan struct{}
	md   Metadata
	err  error
}

// New returns an empty Cache.
func New(opts Options) *Cache {
	c := &Cache{
		now:     opts.Now,
		ttl:     opts.TTL,
		timeout: opts.Timeout,
		maxBody: opts.MaxBody,
		retry:   opts.RetryInterval,
		log:     opts.Logger,
		metrics: opts.Metrics,
		tracer:  opts.Tracer,
		entries: make(map[string]*entry),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.retry <= 0 {
		c.retry = DefaultRetryInterval
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.client = noRedirects(opts.HTTPClient)
	return c
}

func noRedirects(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Get returns the issuer's metadata, fetching it on first use; concurrent
// first callers share one fetch.
//
// Once a copy exists Get never blocks on the network and never fails: when
// the copy is older than 80% of the TTL it starts one background refresh and
// returns the copy it has. If refreshes fail, Get keeps returning the last
// good copy, even past its TTL, because an old but authentic document is far
// better than an outage; each such answer is counted as stale_served, and
// refreshes are retried at most once per RetryInterval.
//
// Without a copy, a failure is remembered for RetryInterval and returned to
// callers in that window without a new request.
func (c *Cache) Get(ctx context.Context, issuer string) (Metadata, error) {
	c.mu.Lock()
	e := c.entries[issuer]
	if e == nil {
		e = &entry{}
		c.entries[issuer] = e
	}
	now := c.now()
	if e.ok {
		md, stale := e.md, e.lastErr != nil
		c.maybeRefreshLocked(ctx, issuer, e, now)
		c.mu.Unlock()
		if stale {
			c.metrics.staleServed()
		}
		return md, nil
	}
	f := e.first
	switch {
	case f != nil:
		c.mu.Unlock()
		if c.onJoin != nil {
			c.onJoin(issuer)
		}
	case e.lastErr != nil && now.Sub(e.attemptAt) < c.retry:
		err := e.lastErr
		c.mu.Unlock()
		return Metadata{}, err
	default:
		f = &flight{done: make(chan struct{})}
		e.first = f
		e.attemptAt = now
		c.mu.Unlock()
		// Detached from ctx so that one impatient caller cannot fail the
		// fetch for everyone waiting on it; c.timeout still bounds it.
		go c.runFirst(context.WithoutCancel(ctx), issuer, e, f)
	}
	select {
	case <-f.done:
		return f.md, f.err
	case <-ctx.Done():
		return Metadata{}, ctx.Err()
	}
}

func (c *Cache) runFirst(ctx context.Context, issuer string, e *entry, f *flight) {
	md, err := c.fetch(ctx, issuer)
	c.mu.Lock()
	e.first = nil
	c.recordLocked(e, md, err)
	c.mu.Unlock()
	f.md, f.err = md, err
	close(f.done)
}

func (c *Cache) maybeRefreshLocked(ctx context.Context, issuer string, e *entry, now time.Time) {
	if e.refreshing || now.Sub(e.fetchedAt) < c.ttl*4/5 {
		return
	}
	if e.lastErr != nil && now.Sub(e.attemptAt) < c.retry {
		return
	}
	e.refreshing = true
	e.attemptAt = now
	go c.refresh(context.WithoutCancel(ctx), issuer, e)
}

func (c *Cache) refresh(ctx context.Context, issuer string, e *entry) {
	md, err := c.fetch(ctx, issuer)
	c.mu.Lock()
	e.refreshing = false
	c.recordLocked(e, md, err)
	age := c.now().Sub(e.fetchedAt)
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("oidc discovery refresh failed; serving last good copy",
			"issuer", issuer, "copy_age", age.Round(time.Second), "err", err)
	}
	if c.afterRefresh != nil {
		c.afterRefresh(issuer, err)
	}
}

func (c *Cache) recordLocked(e *entry, md Metadata, err error) {
	if err != nil {
		e.lastErr = err
		return
	}
	e.md, e.ok, e.fetchedAt, e.lastErr = md, true, c.now(), nil
}

// Fetch discovers the issuer's metadata now, bypassing the cache, and stores
// the result on success. A failure leaves any cached copy untouched. Use it
// when a provider is registered so configuration errors surface at once.
//
// It tries {issuer}/.well-known/openid-configuration first and, on 404, the
// RFC 8414 oauth-authorization-server document. Redirects are not followed.
// Errors are [*Error] values wrapping the sentinel errors of this package.
func (c *Cache) Fetch(ctx context.Context, issuer string) (Metadata, error) {
	md, err := c.fetch(ctx, issuer)
	if err != nil {
		return Metadata{}, err
	}
	c.mu.Lock()
	e := c.entries[issuer]
	if e == nil {
		e = &entry{}
		c.entries[issuer] = e
	}
	c.recordLocked(e, md, nil)
	c.mu.Unlock()
	return md, nil
}

func (c *Cache) fetch(ctx context.Context, issuer string) (Metadata, error) {
	ctx, span := tracing.Start(ctx, c.tracer, "oidc.discovery", attribute.String("server.address", issuerHost(issuer)))
	defer span.End()
	start := c.now()
	md, err := c.fetchDocument(ctx, issuer)
	if err != nil {
		span.SetStatus(codes.Error, "discovery failed")
	}
	c.metrics.fetched(c.now().Sub(start), err)
	return md, err
}

// issuerHost is the issuer's host name for span attributes.
func issuerHost(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
