package brokerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/secret"
)

// Defaults used when an Options field is zero.
const (
	DefaultDialTimeout           = 3 * time.Second
	DefaultResponseHeaderTimeout = 15 * time.Second
	DefaultAttemptTimeout        = 20 * time.Second
	DefaultAttempts              = 3
	DefaultRetryBase             = 100 * time.Millisecond
	DefaultRetryMax              = time.Second

	// MaxResponseBody is the most the client reads from one broker answer.
	MaxResponseBody = 1 << 20

	// CodeBrokerError is the code of a 502 for a broker that answered wrongly.
	CodeBrokerError = "broker_error"

	// unavailableRetryAfter is what agents are told to wait when the broker
	// could not be reached and said nothing itself.
	unavailableRetryAfter = 2 * time.Second
)

// Result labels passed to Options.Observe, one per attempt.
const (
	ResultOK          = "ok"           // 2xx
	ResultClientError = "client_error" // 4xx (and 501) passed on to the agent
	ResultServerError = "server_error" // other 5xx
	ResultBadResponse = "bad_response" // unreadable or oversized body
	ResultUnreachable = "unreachable"  // connection error
	ResultTimeout     = "timeout"      // attempt deadline passed
	ResultCanceled    = "canceled"     // the caller went away
)

// Options configures a Client.
type Options struct {
	// BaseURL is the broker's root, e.g. http://broker:8080.
	BaseURL string
	// APIKey is sent as X-API-Key when set.
	APIKey string
	// HTTPClient overrides the pooled client NewHTTPClient builds. Its own
	// Timeout, if any, applies on top of AttemptTimeout.
	HTTPClient *http.Client
	// DialTimeout and ResponseHeaderTimeout tune the default transport.
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	// AttemptTimeout bounds one request to the broker, body included.
	AttemptTimeout time.Duration
	// Attempts is how many times an idempotent call is tried on a
	// connection error, 502 or 503. Calls that change state are tried once.
	Attempts int
	// RetryBase and RetryMax shape the exponential backoff with full jitter
	// between attempts.
	RetryBase time.Duration
	RetryMax  time.Duration
	// Observe, when set, is told about every attempt.
	Observe func(op, result string, elapsed time.Duration)
	// Now is the clock used to time attempts. Required.
	Now func() time.Time
}

// Client calls the broker. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	apiKey    secret.String
	http      *http.Client
	attempt   time.Duration
	attempts  int
	retryBase time.Duration
	retryMax  time.Duration
	observe   func(op, result string, elapsed time.Duration)
	now       func() time.Time
}

// New checks opts and returns a Client.
func New(opts Options) (*Client, error) {
	if opts.Now == nil {
		return nil, errors.New("brokerclient: Options.Now is required")
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" ||
		base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, errors.New("brokerclient: base URL must be an absolute http(s) URL without user info, query or fragment")
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = ""
	for _, d := range []time.Duration{opts.DialTimeout, opts.ResponseHeaderTimeout, opts.AttemptTimeout, opts.RetryBase, opts.RetryMax} {
		if d < 0 {
			return nil, errors.New("brokerclient: timeouts and delays must not be negative")
		}
	}
	if opts.Attempts < 0 {
		return nil, errors.New("brokerclient: Attempts must not be negative")
	}
	c := &Client{
		base:      base,
		apiKey:    secret.String(opts.APIKey),
		http:      opts.HTTPClient,
		attempt:   orDefault(opts.AttemptTimeout, DefaultAttemptTimeout),
		attempts:  opts.Attempts,
		retryBase: orDefault(opts.RetryBase, DefaultRetryBase),
		retryMax:  orDefault(opts.RetryMax, DefaultRetryMax),
		observe:   opts.Observe,
		now:       opts.Now,
	}
	if c.attempts == 0 {
		c.attempts = DefaultAttempts
	}
	if c.http == nil {
		c.http = NewHTTPClient(orDefault(opts.DialTimeout, DefaultDialTimeout), orDefault(opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout))
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// NewHTTPClient returns the keep-alive client the gateway uses for the
// broker: many idle connections to the one host, since every agent call
// becomes a broker call, and no redirects, since the broker never sends one
// to the gateway and following one could carry the API key elsewhere.
func NewHTTPClient(dial, responseHeader time.Duration) *http.Client {
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dial,
		ResponseHeaderTimeout: responseHeader,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// call is one logical broker call.
type call struct {
	op     string   // metric label
	method string   // GET is the only idempotent method the gateway uses
	path   []string // path segments, each escaped on its own
	query  string   // encoded query string, may be empty
	body   any      // JSON-encoded when non-nil
}

// answer is one broker response, read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do runs c, retrying idempotent calls, and decodes a 2xx body into out.
func (cl *Client) do(ctx context.Context, c call, out any) error {
	body, status, err := cl.fetch(ctx, c)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return unreadable(c.op, status, err)
	}
	return nil
}

// unreadable is the error for a 2xx answer that does not decode.
func unreadable(op string, status int, err error) error {
	return httpapi.BadGateway(CodeBrokerError, "the broker sent an unreadable answer",
		fmt.Errorf("broker %s: decode %d answer: %w", op, status, err))
}

// fetch runs c, retrying idempotent calls, and returns a 2xx answer's body
// and status; any other answer or failure is returned as the error the
// agent sees.
func (cl *Client) fetch(ctx context.Context, c call) ([]byte, int, error) {
	u := *cl.base
	escaped := make([]string, len(c.path))
	for i, seg := range c.path {
		escaped[i] = url.PathEscape(seg)
	}
	u.Path = cl.base.Path + "/" + strings.Join(c.path, "/")
	u.RawPath = cl.base.EscapedPath() + "/" + strings.Join(escaped, "/")
	u.RawQuery = c.query
	var payload []byte
	if c.body != nil {
		var err error
		if payload, err = encodeBody(c.body); err != nil {
			return nil, 0, fmt.Errorf("brokerclient: encode %s request: %w", c.op, err)
		}
	}
	attempts := 1
	if c.method == http.MethodGet {
		attempts = cl.attempts
	}
	var (
		ans answer
		err error
	)
	for i := 0; ; i++ {
		ans, err = cl.once(ctx, c, u.String(), payload)
		if i+1 >= attempts || !cl.retryable(ans, err) {
			break
		}
		if !sleep(ctx, cl.backoff(i)) {
			break
		}
	}
	if err != nil {
		return nil, 0, cl.transportError(ctx, c, err)
	}
	if ans.status >= 200 && ans.status < 300 {
		return ans.body, ans.status, nil
	}
	return nil, 0, mapStatus(c.op, ans)
}

// Shared header values of every broker request; never modified.
var (
	jsonValue      = []string{"application/json"}
	userAgentValue = []string{"dromos-gateway"}
	gatewayValue   = []string{"1"}
)

// errAttemptTimeout marks an attempt that ran past AttemptTimeout.
var errAttemptTimeout = errors.New("broker did not answer in time")

// errTooLarge marks an answer over MaxResponseBody.
var errTooLarge = errors.New("broker answer larger than 1 MiB")

func (cl *Client) once(ctx context.Context, c call, target string, payload []byte) (answer, error) {
	start := cl.now()
	actx, cancel := context.WithTimeoutCause(ctx, cl.attempt, errAttemptTimeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, c.method, target, body)
	if err != nil {
		return answer{}, err
	}
	// Canonical keys assigned directly, the constant values shared: what
	// Header.Set would store, without canonicalizing and allocating again
	// on every call. The transport only reads a request's header.
	h := req.Header
	h["Accept"] = jsonValue
	h["User-Agent"] = userAgentValue
	h[httpapi.GatewayHeader] = gatewayValue
	if payload != nil {
		h["Content-Type"] = jsonValue
	}
	if !cl.apiKey.IsEmpty() {
		h["X-Api-Key"] = []string{cl.apiKey.Reveal()}
	}
	if id := logging.RequestID(ctx); id != "" {
		h[httpapi.RequestIDHeader] = []string{id}
	}
	ans, err := cl.send(req)
	if err != nil && context.Cause(actx) == errAttemptTimeout && ctx.Err() == nil {
		err = errAttemptTimeout
	}
	cl.record(c.op, resultOf(ctx, ans, err), cl.now().Sub(start))
	return ans, err
}

func (cl *Client) send(req *http.Request) (answer, error) {
	resp, err := cl.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return answer{}, err
	}
	ans := answer{status: resp.StatusCode, header: resp.Header, body: data}
	if len(data) > MaxResponseBody {
		return ans, errTooLarge
	}
	return ans, nil
}

func (cl *Client) record(op, result string, elapsed time.Duration) {
	if cl.observe != nil {
		cl.observe(op, result, elapsed)
	}
}

func resultOf(ctx context.Context, ans answer, err error) string {
	switch {
	case errors.Is(err, errTooLarge):
		return ResultBadResponse
	case ctx.Err() != nil:
		return ResultCanceled
	case errors.Is(err, errAttemptTimeout):
		return ResultTimeout
	case err != nil:
		return ResultUnreachable
	case ans.status < 300:
		return ResultOK
	case passedThrough(ans.status):
		return ResultClientError
	default:
		return ResultServerError
	}
}

// retryable reports whether another attempt may help: the broker could not
// be reached, or said it is briefly unable to answer. A timeout is not
// retried, so that a slow broker costs an agent one attempt's wait, not
// three. Nor is a provider_error (the provider refused a refresh: another
// attempt is another provider call) or a 503 whose Retry-After is longer
// than this client would wait between attempts.
func (cl *Client) retryable(ans answer, err error) bool {
	if err != nil {
		return !errors.Is(err, errAttemptTimeout) && !errors.Is(err, errTooLarge) &&
			!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	if ans.status != http.StatusBadGateway && ans.status != http.StatusServiceUnavailable {
		return false
	}
	if env, ok := parseEnvelope(ans.body); ok && env.Code == httpapi.CodeProviderError {
		return false
	}
	if ra := ans.header.Get("Retry-After"); ra != "" {
		secs, perr := strconv.Atoi(strings.TrimSpace(ra))
		if perr != nil || time.Duration(secs)*time.Second > cl.retryMax {
			return false
		}
	}
	return true
}

// backoff is the full-jitter delay before attempt i+1: uniform in
// [0, min(RetryMax, RetryBase·2^i)).
func (cl *Client) backoff(i int) time.Duration {
	ceiling := cl.retryMax
	if i < 30 {
		if d := cl.retryBase << i; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (cl *Client) transportError(ctx context.Context, c call, err error) error {
	cause := fmt.Errorf("broker %s: %w", c.op, err)
	if errors.Is(err, errTooLarge) {
		return httpapi.BadGateway(CodeBrokerError, "the broker sent an oversized answer", cause)
	}
	if errors.Is(err, errAttemptTimeout) || ctx.Err() != nil {
		return httpapi.Unavailable("the broker did not answer in time", unavailableRetryAfter, cause)
	}
	return httpapi.Unavailable("the broker is unreachable", unavailableRetryAfter, cause)
}

// passedThrough reports the broker statuses whose envelope reaches the
// agent unchanged. 401 and 403 are not among them: they mean the gateway's
// own broker key is wrong, which is the operator's problem, and an agent
// told 401 would wrongly blame its own key.
func passedThrough(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge,
		http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusNotImplemented:
		return true
	}
	return false
}

// mapStatus turns a non-2xx broker answer into the error the agent sees.
func mapStatus(op string, ans answer) error {
	env, envOK := parseEnvelope(ans.body)
	return agentError(op, ans.status, env, envOK, retryAfter(ans.header))
}

// agentError is the error the agent sees for a broker answer with status
// and, when envOK, the envelope env; ra is the answer's Retry-After.
func agentError(op string, status int, env httpapi.Envelope, envOK bool, ra time.Duration) error {
	cause := fmt.Errorf("broker %s: status %d", op, status)
	switch {
	case status == http.StatusServiceUnavailable:
		msg := "the broker is unavailable"
		if envOK {
			msg = env.Message
		}
		if ra <= 0 {
			ra = unavailableRetryAfter
		}
		return httpapi.Unavailable(msg, ra, cause)
	case status == http.StatusNotFound && !envOK:
		return httpapi.NotFound("resource")
	case passedThrough(status) && envOK:
		e := &httpapi.Error{Status: status, Code: env.Code, Message: env.Message}
		if status == http.StatusTooManyRequests {
			e.RetryAfter = ra
		}
		return e
	case status == http.StatusBadGateway && envOK && env.Code == httpapi.CodeProviderError:
		// The provider, not the broker, failed; the broker's message says so
		// in client-safe words.
		return httpapi.BadGateway(env.Code, env.Message, cause)
	default:
		return httpapi.BadGateway(CodeBrokerError, "the broker answered unexpectedly", cause)
	}
}

// maxMessage bounds a broker message passed to agents.
const maxMessage = 512

// parseEnvelope accepts only a well-formed {"code","message"} with a plain
// code, so that garbage never reaches an agent as if it were an error.
func parseEnvelope(b []byte) (httpapi.Envelope, bool) {
	var env httpapi.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return httpapi.Envelope{}, false
	}
	return cleanEnvelope(env)
}

// cleanEnvelope is env as an agent may see it: a plain code and a bounded
// message without control characters; false when the code is not plain.
func cleanEnvelope(env httpapi.Envelope) (httpapi.Envelope, bool) {
	if !plainCode(env.Code) {
		return httpapi.Envelope{}, false
	}
	if len(env.Message) > maxMessage {
		env.Message = strings.ToValidUTF8(env.Message[:maxMessage], "")
	}
	env.Message = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, env.Message)
	return env, true
}

func plainCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// retryAfter reads a delay-seconds Retry-After; the HTTP-date form is not
// used by the broker and is ignored.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	return retrySeconds(n)
}

// retrySeconds is n seconds, capped at an hour.
func retrySeconds(n int) time.Duration {
	if n > 3600 {
		n = 3600
	}
	return time.Duration(n) * time.Second
}

// encodeBody encodes a request body without HTML escaping, so JSON values
// an agent gave (metadata) reach the broker byte for byte.
func encodeBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
