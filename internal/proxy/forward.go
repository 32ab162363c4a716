package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/netguard"
	"github.com/dromos-dev/dromos/internal/secret"
)

// Config is the proxy's limits. Zero values take the defaults.
type Config struct {
	// MaxRequestBody is the largest request body forwarded (10 MiB).
	MaxRequestBody int64
	// MaxResponseBody is the largest response body passed back (50 MiB).
	MaxResponseBody int64
	// MaxReplayBody: request bodies up to this size (1 MiB) are buffered
	// so that a request refused with 401 can be sent again with a
	// refreshed token; larger ones stream and are not retried.
	MaxReplayBody int64
	// MaxHeaderBytes bounds the agent's request headers (64 KiB) and the
	// provider's response headers.
	MaxHeaderBytes int
	// Timeout bounds one proxied call, both bodies included (60s).
	Timeout time.Duration
	// MaxPerAgent is how many proxied calls one agent may have in flight
	// (32); the next one is answered 429.
	MaxPerAgent int
	// AllowPrivate lets the proxy connect to loopback and private
	// addresses, and to http (not https) bases. Off in production: the
	// dial-time guard (package netguard) then refuses those addresses
	// whatever a base URL or DNS says, and tokens go over https only.
	AllowPrivate bool
}

// Defaults of Config.
const (
	DefaultMaxRequestBody  = 10 << 20
	DefaultMaxResponseBody = 50 << 20
	DefaultMaxReplayBody   = 1 << 20
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultTimeout         = 60 * time.Second
	DefaultMaxPerAgent     = 32
)

func (c *Config) fill() {
	if c.MaxRequestBody <= 0 {
		c.MaxRequestBody = DefaultMaxRequestBody
	}
	if c.MaxResponseBody <= 0 {
		c.MaxResponseBody = DefaultMaxResponseBody
	}
	if c.MaxReplayBody <= 0 {
		c.MaxReplayBody = DefaultMaxReplayBody
	}
	c.MaxReplayBody = min(c.MaxReplayBody, c.MaxRequestBody)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxPerAgent <= 0 {
		c.MaxPerAgent = DefaultMaxPerAgent
	}
}

// Deps are the Forwarder's collaborators.
type Deps struct {
	// Transport sends the upstream requests; nil means a netguard
	// transport honouring Config.AllowPrivate. It must not follow
	// redirects (an http.RoundTripper does not).
	Transport http.RoundTripper
	Now       func() time.Time
}

// Forwarder sends agents' requests on to provider APIs. It is safe for
// concurrent use.
type Forwarder struct {
	cfg       Config
	transport http.RoundTripper
	now       func() time.Time

	mu       sync.Mutex
	inFlight map[string]int
	// buffers are copyBody's, reused across calls.
	buffers sync.Pool
}

// New builds a Forwarder.
func New(cfg Config, d Deps) *Forwarder {
	cfg.fill()
	if d.Now == nil {
		d.Now = time.Now
	}
	tr := d.Transport
	if tr == nil {
		t := netguard.Transport(cfg.AllowPrivate)
		// The call's deadline (Timeout) is what ends a silent provider;
		// this only backs it up.
		t.ResponseHeaderTimeout = cfg.Timeout + 5*time.Second
		t.MaxResponseHeaderBytes = int64(cfg.MaxHeaderBytes)
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 256
		tr = t
	}
	f := &Forwarder{cfg: cfg, transport: tr, now: d.Now, inFlight: map[string]int{}}
	f.buffers.New = func() any { b := make([]byte, 32<<10); return &b }
	return f
}

// Config is the Forwarder's configuration with defaults filled in.
func (f *Forwarder) Config() Config { return f.cfg }

// Call is one proxied request's context: who asks, where it may go and
// how to get the connection's token.
type Call struct {
	Agent  string
	Target Target
	// Base is the agent's choice of API base ("" for the first).
	Base string
	// Path is the escaped path under the base, without its leading '/';
	// Query the raw query to forward.
	Path, Query string
	// Token reads the connection's token (cached); Refresh forces a new
	// one after the provider refused stale; Drop forgets the cached one.
	Token   func(ctx context.Context) (Token, error)
	Refresh func(ctx context.Context, stale secret.String) (Token, error)
	Drop    func()
}

// Record describes one proxied call for the audit log and metrics. It
// holds no header, body, query or token.
type Record struct {
	Agent, Provider, Method, Host, Path string
	Status                              int // the status the agent received
	BytesIn, BytesOut                   int64
	Elapsed                             time.Duration
	Retried                             bool // a 401 led to a refresh and a second attempt
}

// Serve forwards r as c says and writes the provider's answer to w. The
// returned error is non-nil only when nothing was written: the caller
// then answers with it in the error envelope.
func (f *Forwarder) Serve(w http.ResponseWriter, r *http.Request, c Call) (Record, error) {
	start := f.now()
	rec := Record{Agent: c.Agent, Provider: c.Target.Provider, Method: r.Method}
	u, err := c.Target.URL(c.Base, c.Path, c.Query)
	if err != nil {
		return rec, err
	}
	rec.Host, rec.Path = u.Host, u.EscapedPath()
	if !f.cfg.AllowPrivate && u.Scheme != "https" {
		// Production: a token never travels in clear text.
		return rec, &httpapi.Error{Status: http.StatusBadGateway, Code: CodeNotConfigured,
			Message: "the provider's API base is not https: the proxy sends tokens over https only"}
	}
	if r.ContentLength > f.cfg.MaxRequestBody {
		return rec, tooLarge(f.cfg.MaxRequestBody)
	}
	if headerBytes(r.Header) > f.cfg.MaxHeaderBytes {
		return rec, &httpapi.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Code: httpapi.CodeTooLarge,
			Message: fmt.Sprintf("request headers over %d bytes", f.cfg.MaxHeaderBytes)}
	}
	if !f.acquire(c.Agent) {
		return rec, &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeRateLimited,
			Message: fmt.Sprintf("this agent has %d proxied calls in flight; wait for one to finish", f.cfg.MaxPerAgent), RetryAfter: time.Second}
	}
	defer f.release(c.Agent)

	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.Timeout)
	defer cancel()
	body, replay, err := f.readBody(r)
	if err != nil {
		return rec, err
	}
	counted := &countingReader{r: body}
	tok, err := c.Token(ctx)
	if err != nil {
		return rec, err
	}
	resp, err := f.send(ctx, r, u, c.Target, tok, counted, replay)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		c.Drop()
		// A key or password is not refreshed: the 401 is the answer (the
		// next call reads the credential again, a rotated one included).
		if replay != nil && !tok.Credential() {
			// One forced refresh (shared with every caller that saw the
			// same token refused) and one retry with the new token.
			drain(resp)
			if tok, err = c.Refresh(ctx, tok.Value); err != nil {
				return rec, err
			}
			rec.Retried = true
			counted = &countingReader{r: bytes.NewReader(replay)}
			resp, err = f.send(ctx, r, u, c.Target, tok, counted, replay)
		}
	}
	if err != nil {
		rec.BytesIn = counted.n.Load()
		return rec, f.upstreamErr(ctx, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > f.cfg.MaxResponseBody {
		return rec, &httpapi.Error{Status: http.StatusBadGateway, Code: httpapi.CodeTooLarge,
			Message: fmt.Sprintf("the provider's answer is over the proxy's %d-byte limit", f.cfg.MaxResponseBody)}
	}
	rec.Status = resp.StatusCode
	copyResponseHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	n, err := f.copyBody(w, resp)
	rec.BytesOut, rec.BytesIn = n, counted.n.Load()
	rec.Elapsed = f.now().Sub(start)
	if err != nil {
		// The status is out: the only way left to say the body is cut
		// short is to break the connection.
		return rec, errAbort{err}
	}
	return rec, nil
}

// errAbort is a failure after the answer began; the caller must not write
// an error envelope (ErrAborted tells).
type errAbort struct{ err error }

func (e errAbort) Error() string { return "proxied answer cut short: " + e.err.Error() }
func (e errAbort) Unwrap() error { return e.err }

// Aborted reports whether err came after the answer began.
func Aborted(err error) bool {
	var a errAbort
	return errors.As(err, &a)
}

func tooLarge(limit int64) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusRequestEntityTooLarge, Code: httpapi.CodeTooLarge,
		Message: fmt.Sprintf("request body over the proxy's %d-byte limit", limit)}
}

// readBody returns the body to forward and, when it is small enough to be
// sent twice, its bytes (an empty non-nil slice for no body).
func (f *Forwarder) readBody(r *http.Request) (io.Reader, []byte, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return http.NoBody, []byte{}, nil
	}
	limited := http.MaxBytesReader(nil, r.Body, f.cfg.MaxRequestBody)
	if r.ContentLength > f.cfg.MaxReplayBody {
		return limited, nil, nil
	}
	buf, err := io.ReadAll(io.LimitReader(limited, f.cfg.MaxReplayBody+1))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, nil, tooLarge(f.cfg.MaxRequestBody)
		}
		return nil, nil, httpapi.BadRequest("reading the request body failed")
	}
	if int64(len(buf)) <= f.cfg.MaxReplayBody {
		return bytes.NewReader(buf), buf, nil
	}
	return io.MultiReader(bytes.NewReader(buf), limited), nil, nil
}

func (f *Forwarder) send(ctx context.Context, in *http.Request, u *url.URL, t Target, tok Token, body io.Reader, replay []byte) (*http.Response, error) {
	out, err := http.NewRequestWithContext(ctx, in.Method, "http://placeholder/", nil)
	if err != nil {
		return nil, httpapi.BadRequest("unsupported method")
	}
	out.URL = clone(u)
	out.Host = out.URL.Host
	out.Header = outboundHeader(in.Header)
	for k, vs := range t.constant {
		out.Header[k] = vs
	}
	if tok.Credential() {
		out.Header.Set(tok.Header, tok.Value.Reveal())
	} else {
		out.Header.Set(t.header, t.prefix+tok.Value.Reveal())
	}
	switch {
	case replay != nil && len(replay) == 0:
		out.Body, out.ContentLength = http.NoBody, 0
	case replay != nil:
		out.Body, out.ContentLength = io.NopCloser(body), int64(len(replay))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(replay)), nil }
	default:
		out.Body, out.ContentLength = io.NopCloser(body), in.ContentLength
	}
	return f.transport.RoundTrip(out)
}

func (f *Forwarder) upstreamErr(ctx context.Context, err error) error {
	if e, ok := httpapi.As(err); ok {
		return e
	}
	var (
		mb *http.MaxBytesError
		ne net.Error
	)
	switch {
	case errors.As(err, &mb):
		return tooLarge(f.cfg.MaxRequestBody)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &httpapi.Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout,
			Message: fmt.Sprintf("the provider's API did not answer within %s", f.cfg.Timeout), Cause: err}
	case ctx.Err() != nil:
		return &httpapi.Error{Status: 499, Code: CodeUpstreamError, Message: "the request was cancelled", Cause: err}
	}
	return httpapi.BadGateway(CodeUpstreamError, "the provider's API could not be reached", err)
}

// copyBody streams the answer to w, flushing as it goes when the provider
// streams (no length), and stops at the response limit.
func (f *Forwarder) copyBody(w http.ResponseWriter, resp *http.Response) (int64, error) {
	rc := http.NewResponseController(w)
	flush := resp.ContentLength < 0
	bp := f.buffers.Get().(*[]byte)
	defer f.buffers.Put(bp)
	buf := *bp
	var n int64
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if n+int64(k) > f.cfg.MaxResponseBody {
				return n, fmt.Errorf("response over %d bytes", f.cfg.MaxResponseBody)
			}
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func (f *Forwarder) acquire(agent string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inFlight[agent] >= f.cfg.MaxPerAgent {
		return false
	}
	f.inFlight[agent]++
	return true
}

func (f *Forwarder) release(agent string) {
	f.mu.Lock()
	if f.inFlight[agent]--; f.inFlight[agent] <= 0 {
		delete(f.inFlight, agent)
	}
	f.mu.Unlock()
}

func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}

// countingReader counts what the transport read of the request body, on
// its own goroutine.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// LogAttrs are a Record's fields for a structured log line.
func (r Record) LogAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("agent", r.Agent), slog.String("provider", r.Provider), slog.String("method", r.Method),
		slog.String("host", r.Host), slog.String("path", r.Path), slog.Int("status", r.Status),
		slog.Int64("bytes_in", r.BytesIn), slog.Int64("bytes_out", r.BytesOut),
		slog.Float64("duration_ms", float64(r.Elapsed.Microseconds())/1000), slog.Bool("retried", r.Retried),
	}
}

// StatusClass is "2xx", "4xx"… for metrics; "error" for no answer.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "error"
	}
	return string(rune('0'+status/100)) + "xx"
}
