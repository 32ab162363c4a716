package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds every answer read from the gateway, so a broken or hostile
// peer cannot make the agent buffer without limit.
const maxBody = 1 << 20

// maxRetryAfter bounds the Retry-After the client reads, so that absurd
// values cannot overflow a time.Duration. Whether a wait is taken at all is
// the RetryPolicy's MaxDelay's call.
const maxRetryAfter = 24 * time.Hour

// RetryPolicy says how often and how patiently a call is repeated after a
// 429, 502 or 503 answer or a connection error. The wait before attempt n+1
// is drawn uniformly from [0, min(MaxDelay, BaseDelay·2ⁿ⁻¹)) ("full
// jitter"), unless the gateway sent Retry-After: one of at most MaxDelay is
// waited exactly; a longer one is not waited at all, and the call returns
// the *APIError at once with the requested wait in its RetryAfter. Other
// statuses (400, 401, 404, 409…) are never retried.
type RetryPolicy struct {
	MaxAttempts int           // total attempts including the first; 1 turns retries off
	BaseDelay   time.Duration // upper bound of the first wait
	MaxDelay    time.Duration // upper bound of any wait, computed or asked for with Retry-After
}

// DefaultRetryPolicy is the policy of a client made without WithRetry:
// three attempts, waits of at most 200 ms then 400 ms.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 3, BaseDelay: 200 * time.Millisecond, MaxDelay: 2 * time.Second}
}

// Client talks to a Dromos gateway. It is safe for concurrent use.
type Client struct {
	base   string // gateway URL without a trailing slash
	apiKey string
	hc     *http.Client
	retry  RetryPolicy
	log    *slog.Logger

	// refreshCooldown: after HTTPClient's transport renews a refused
	// token, it does not force another renewal for this long.
	refreshCooldown time.Duration

	// proxy: HTTPClient goes through the gateway's API proxy (WithProxy).
	proxy bool

	// Seams for tests; New fills them with the real thing.
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	jitter func(n int64) int64 // uniform in [0, n)
}

// Option configures a Client.
type Option func(*Client) error

// WithAPIKey sets the key the gateway knows this agent by. It is sent as
// "Authorization: Bearer KEY" and never logged.
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(key, "\r\n") {
			return errors.New("dromos: API key contains a line break")
		}
		c.apiKey = key
		return nil
	}
}

// WithHTTPClient sets the client used to reach the gateway (timeouts, TLS,
// proxies). Its Transport is also the base of HTTPClient's transport.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("dromos: WithHTTPClient(nil)")
		}
		c.hc = hc
		return nil
	}
}

// WithRetry replaces DefaultRetryPolicy. RetryPolicy{MaxAttempts: 1} turns
// retries off.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error {
		if p.MaxAttempts < 1 || p.BaseDelay < 0 || p.MaxDelay < p.BaseDelay {
			return errors.New("dromos: RetryPolicy needs MaxAttempts ≥ 1 and 0 ≤ BaseDelay ≤ MaxDelay")
		}
		c.retry = p
		return nil
	}
}

// WithLogger logs one debug line per gateway attempt: method, route,
// status, attempt and duration. Tokens, keys and states are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("dromos: WithLogger(nil)")
		}
		c.log = l
		return nil
	}
}

// New returns a client for the gateway at gatewayURL, e.g.
// "http://localhost:8090". A path prefix is kept, for gateways mounted
// under one.
func New(gatewayURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(gatewayURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("dromos: gateway URL must be an absolute http(s) URL without query, got %q", gatewayURL)
	}
	c := &Client{
		base:  strings.TrimSuffix(u.String(), "/"),
		hc:    &http.Client{Timeout: 30 * time.Second},
		retry: DefaultRetryPolicy(),
		log:   slog.New(slog.DiscardHandler),

		refreshCooldown: defaultRefreshCooldown,

		now:    time.Now,
		sleep:  sleepCtx,
		jitter: rand.Int64N,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call is one logical gateway call: route is the path template used in
// logs, path the concrete path.
type call struct {
	method, route, path string
	body                any
	// once: never retried (a single-use value).
	once bool
}

// do runs c with the retry policy and decodes a 2xx JSON answer into out
// (when out is non-nil). Errors are *APIError for gateway answers.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("dromos: encoding %s body: %w", cl.route, err)
		}
	}
	for attempt := 1; ; attempt++ {
		r := c.attempt(ctx, cl, payload, attempt, out)
		if r.err == nil {
			return nil
		}
		if cl.once || !r.retryable() || attempt >= c.retry.MaxAttempts || ctx.Err() != nil {
			return r.err
		}
		wait := r.retryAfter
		if wait > c.retry.MaxDelay {
			// The gateway wants a longer pause than the policy allows.
			// Waiting it out would park this caller, and every caller
			// queued behind a token source's lock; the error carries the
			// wait so the caller can choose.
			return r.err
		}
		if wait < 0 {
			wait = c.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			// Waiting would outlive the caller; the real error helps more
			// than a deadline error.
			return r.err
		}
		if c.sleep(ctx, wait) != nil {
			return r.err
		}
	}
}

// result is how one attempt ended.
type result struct {
	status     int           // HTTP status; 0 when no answer came back
	retryAfter time.Duration // the server's Retry-After; -1 when absent
	transient  bool          // the connection failed: worth another try
	err        error
}

func (r result) retryable() bool {
	switch r.status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return true
	}
	return r.transient
}

// attempt sends one request and decodes a 2xx answer into out.
func (c *Client) attempt(ctx context.Context, cl call, payload []byte, n int, out any) result {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.base+cl.path, body)
	if err != nil {
		return result{retryAfter: -1, err: fmt.Errorf("dromos: building %s request: %w", cl.route, err)}
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	start := c.now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "dromos gateway call", slog.String("method", cl.method),
			slog.String("route", cl.route), slog.Int("attempt", n), slog.String("error", "connection failed"))
		// The url.Error names the URL, which holds at most a connection id;
		// the key travels in a header and cannot appear.
		transient := ctx.Err() == nil
		return result{retryAfter: -1, transient: transient, err: fmt.Errorf("dromos: %s %s: %w", cl.method, cl.route, err)}
	}
	defer resp.Body.Close()
	c.log.LogAttrs(ctx, slog.LevelDebug, "dromos gateway call", slog.String("method", cl.method),
		slog.String("route", cl.route), slog.Int("status", resp.StatusCode), slog.Int("attempt", n),
		slog.Duration("duration", c.now().Sub(start)))
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return result{retryAfter: -1, transient: ctx.Err() == nil, err: fmt.Errorf("dromos: %s %s: reading answer: %w", cl.method, cl.route, err)}
	}
	if len(raw) > maxBody {
		return result{status: resp.StatusCode, retryAfter: -1, err: fmt.Errorf("dromos: %s %s: answer over %d bytes", cl.method, cl.route, maxBody)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := newAPIError(resp.StatusCode, raw)
		ra := retryAfter(resp.Header.Get("Retry-After"))
		if ra > 0 {
			ae.RetryAfter = ra
		}
		return result{status: resp.StatusCode, retryAfter: ra, err: ae}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return result{status: resp.StatusCode, retryAfter: -1,
				err: fmt.Errorf("dromos: %s %s: malformed answer: %w", cl.method, cl.route, err)}
		}
	}
	return result{status: resp.StatusCode, retryAfter: -1}
}

// backoff is the full-jitter wait after the given attempt.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.retry.MaxDelay
	if shift := attempt - 1; shift < 30 {
		if d := c.retry.BaseDelay << shift; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(c.jitter(int64(ceiling)))
}

// retryAfter reads delay-seconds; the HTTP-date form is not used by Dromos
// and is ignored like a missing header (-1).
func retryAfter(v string) time.Duration {
	secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || secs < 0 {
		return -1
	}
	if secs > int64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(secs) * time.Second
}
