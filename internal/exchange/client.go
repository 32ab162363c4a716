package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dromos-dev/dromos/internal/tracing"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeout = 10 * time.Second
	DefaultMaxBody = 1 << 20
)

// Options configure a Client. Every field is optional.
type Options struct {
	// HTTPClient supplies the Transport (and its Timeout, if any). Its
	// redirect policy and cookie jar are not used: the Client never follows
	// redirects and has no business keeping cookies. Nil means
	// http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds each HTTP attempt, body included. AuthAuto can make two
	// attempts in one call. Default DefaultTimeout.
	Timeout time.Duration
	// MaxBody is the largest response body read; a larger one is an error
	// wrapping ErrBodyTooLarge. Default DefaultMaxBody (1 MiB).
	MaxBody int64
	// Now is the clock used for Token.Expiry and durations in logs. Default
	// time.Now.
	Now func() time.Time
	// Logger receives one debug record per attempt and an info record when
	// AuthAuto falls back. Default: discard.
	Logger *slog.Logger
	// Tracer, when set, records a span per token endpoint call (grant
	// type and host only).
	Tracer trace.Tracer
}

// Client talks to token and revocation endpoints. It is safe for concurrent
// use; the only state it keeps is which auth method worked for each URL
// under AuthAuto.
type Client struct {
	hc      *http.Client
	timeout time.Duration
	maxBody int64
	now     func() time.Time
	log     *slog.Logger
	tracer  trace.Tracer

	mu      sync.Mutex
	learned map[string]AuthMethod // URL → method that worked under AuthAuto
}

// New returns a Client.
func New(opts Options) *Client {
	hc := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if opts.HTTPClient != nil {
		hc.Transport = opts.HTTPClient.Transport
		hc.Timeout = opts.HTTPClient.Timeout
	}
	c := &Client{
		hc:      hc,
		timeout: opts.Timeout,
		maxBody: opts.MaxBody,
		now:     opts.Now,
		log:     opts.Logger,
		tracer:  opts.Tracer,
		learned: make(map[string]AuthMethod),
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// ExchangeCode redeems an authorization code (RFC 6749 §4.1.3) with its PKCE
// verifier (RFC 7636 §4.5). redirectURI and codeVerifier are sent when not
// empty; they must match what the authorization request used.
func (c *Client) ExchangeCode(ctx context.Context, ep Endpoint, code, codeVerifier, redirectURI string) (*Token, error) {
	if code == "" {
		return nil, fmt.Errorf("%w: empty authorization code", ErrInvalidInput)
	}
	form := url.Values{
		"grant_type": {"authorization_code"},
		"code":       {code},
	}
	if redirectURI != "" {
		form.Set("redirect_uri", redirectURI)
	}
	if codeVerifier != "" {
		form.Set("code_verifier", codeVerifier)
	}
	return c.tokenCall(ctx, "authorization_code", ep, form)
}

// Refresh uses a refresh token (RFC 6749 §6). scopes, when not empty, ask for
// a subset of the granted scopes.
//
// When the provider does not rotate the refresh token (no refresh_token in
// the answer), the returned Token carries the one passed in, so a caller
// storing the result never loses it. Compare with the old value to detect a
// rotation.
func (c *Client) Refresh(ctx context.Context, ep Endpoint, refreshToken string, scopes []string) (*Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("%w: empty refresh token", ErrInvalidInput)
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	tok, err := c.tokenCall(ctx, "refresh_token", ep, form)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// Revoke asks the provider to revoke token (RFC 7009). tokenTypeHint
// ("access_token" or "refresh_token") is sent when not empty and the body is
// a form. Any 2xx is success, including the 200 a provider gives for a
// token it does not know.
// A 503 (or any 5xx, 429) is a ClassTransient *Error; the caller may retry.
// ep.TokenURL is not used except to seed AuthAuto with what worked there.
func (c *Client) Revoke(ctx context.Context, revocationURL string, ep Endpoint, token, tokenTypeHint string) error {
	if err := ep.validate(); err != nil {
		return err
	}
	if err := validateURL(revocationURL, "revocation URL"); err != nil {
		return err
	}
	if token == "" {
		return fmt.Errorf("%w: empty token to revoke", ErrInvalidInput)
	}
	form := url.Values{"token": {token}}
	// token_type_hint is RFC 7009's form parameter; providers that
	// document JSON bodies instead document {"token": …} alone.
	if tokenTypeHint != "" && !ep.JSONBody {
		form.Set("token_type_hint", tokenTypeHint)
	}
	return c.post(ctx, "revocation", revocationURL, ep, form, func(r response) error {
		if r.status >= 200 && r.status < 300 {
			return nil
		}
		_, err := ParseResponse(r.status, r.contentType, r.body, r.received)
		return err
	})
}

// RevokeGrant revokes a grant through the token that ends it: the refresh
// token when there is one (RFC 7009 §2.1), else the access token. With
// neither there is nothing to revoke and it returns nil.
func (c *Client) RevokeGrant(ctx context.Context, revocationURL string, ep Endpoint, refreshToken, accessToken string) error {
	switch {
	case refreshToken != "":
		return c.Revoke(ctx, revocationURL, ep, refreshToken, "refresh_token")
	case accessToken != "":
		return c.Revoke(ctx, revocationURL, ep, accessToken, "access_token")
	}
	return nil
}

func (c *Client) tokenCall(ctx context.Context, op string, ep Endpoint, form url.Values) (*Token, error) {
	if err := ep.validate(); err != nil {
		return nil, err
	}
	if err := validateURL(ep.TokenURL, "token URL"); err != nil {
		return nil, err
	}
	if ep.Resource != "" {
		form.Set("resource", ep.Resource)
	}
	ctx, span := tracing.Start(ctx, c.tracer, "oauth.token "+op,
		attribute.String("oauth.grant_type", op), attribute.String("server.address", hostOf(ep.TokenURL)))
	defer span.End()
	var tok *Token
	err := c.post(ctx, op, ep.TokenURL, ep, form, func(r response) error {
		var err error
		tok, err = ParseResponseWith(ep.parseOptions(), r.status, r.contentType, r.body, r.received)
		var e *Error
		if errors.As(err, &e) && (e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500) {
			e.RetryAfter = r.retryAfter
		}
		return err
	})
	if err != nil {
		// The kind of failure only: provider answers can quote what was sent.
		span.SetStatus(codes.Error, "token endpoint call failed")
		return nil, err
	}
	return tok, nil
}

// post sends form to target with the client authentication ep asks for,
// handling the AuthAuto fallback. interpret turns a complete response into
// the call's result; its error decides whether the fallback happens.
func (c *Client) post(ctx context.Context, op, target string, ep Endpoint, form url.Values, interpret func(response) error) error {
	method, auto := c.startMethod(ep, target)
	err := c.attempt(ctx, op, target, ep, method, form, interpret)
	// Client authentication fails before the grant is looked at, so the
	// code or refresh token is still unused and may be sent again.
	if auto && method == AuthBasic && isInvalidClient(err) {
		c.log.LogAttrs(ctx, slog.LevelInfo, "token endpoint rejected client_secret_basic; retrying with client_secret_post",
			slog.String("op", op), slog.String("host", hostOf(target)))
		method = AuthPost
		err = c.attempt(ctx, op, target, ep, method, form, interpret)
	}
	if auto && err == nil {
		c.remember(target, method)
	}
	return err
}

// startMethod resolves AuthAuto to the method last seen working at target,
// else at the token URL (a revocation endpoint of the same provider almost
// always takes the same method), else AuthBasic. auto reports whether a
// fallback is allowed.
func (c *Client) startMethod(ep Endpoint, target string) (method AuthMethod, auto bool) {
	m := ep.method()
	if m != AuthAuto {
		return m, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if learned, ok := c.learned[target]; ok {
		return learned, true
	}
	if learned, ok := c.learned[ep.TokenURL]; ok {
		return learned, true
	}
	return AuthBasic, true
}

func (c *Client) remember(target string, method AuthMethod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.learned[target] = method
}

// LearnedMethod reports which method AuthAuto has found to work at url, if
// any. Operators can surface it to pin the method in the provider profile.
func (c *Client) LearnedMethod(url string) (AuthMethod, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.learned[url]
	return m, ok
}

func (c *Client) attempt(ctx context.Context, op, target string, ep Endpoint, method AuthMethod, form url.Values, interpret func(response) error) error {
	start := c.now()
	resp, err := c.roundTrip(ctx, target, ep, method, form)
	if err == nil {
		err = interpret(resp)
	}
	attrs := []slog.Attr{
		slog.String("op", op),
		slog.String("host", hostOf(target)),
		slog.String("auth_method", string(method)),
		slog.Int("status", resp.status),
		slog.Duration("duration", c.now().Sub(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("class", string(Classify(err))))
		var oe *Error
		if errors.As(err, &oe) {
			attrs = append(attrs, slog.String("oauth_error", oe.Code))
		} else {
			// Errors of this package hold no secret and no body; see doc.go.
			attrs = append(attrs, slog.String("error", err.Error()))
		}
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "token endpoint call", attrs...)
	return err
}

// response is a complete, size-checked answer that is not a redirect.
type response struct {
	status      int
	contentType string
	body        []byte
	received    time.Time
	retryAfter  time.Duration
}

func (c *Client) roundTrip(ctx context.Context, target string, ep Endpoint, method AuthMethod, form url.Values) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	body := make(url.Values, len(form)+2)
	for k, v := range form {
		body[k] = v
	}
	header := make(http.Header, len(ep.ExtraHeaders)+3)
	for k, v := range ep.ExtraHeaders {
		if !reservedHeader(k) {
			header.Set(k, v)
		}
	}
	if err := authenticate(method, ep, body, header, c.now()); err != nil {
		return response{}, err
	}
	header.Set("Accept", "application/json")
	var encoded string
	if ep.JSONBody {
		obj := make(map[string]string, len(body))
		for k := range body {
			obj[k] = body.Get(k)
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			return response{}, fmt.Errorf("%w: cannot encode request", ErrInvalidInput)
		}
		encoded = string(raw)
		header.Set("Content-Type", "application/json")
	} else {
		encoded = body.Encode()
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(encoded))
	if err != nil {
		return response{}, fmt.Errorf("%w: cannot build request", ErrInvalidInput)
	}
	req.Header = header
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%w: %w", ErrTransport, err)
	}
	defer resp.Body.Close()

	r := response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"),
		retryAfter: retryAfter(resp.Header.Get("Retry-After"), c.now())}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return r, fmt.Errorf("%w (HTTP %d)", ErrRedirect, resp.StatusCode)
	}
	if resp.ContentLength > c.maxBody {
		return r, fmt.Errorf("%w (over %d bytes)", ErrBodyTooLarge, c.maxBody)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return r, fmt.Errorf("%w: reading response: %w", ErrTransport, err)
	}
	if int64(len(data)) > c.maxBody {
		return r, fmt.Errorf("%w (over %d bytes)", ErrBodyTooLarge, c.maxBody)
	}
	r.body = data
	r.received = c.now()
	return r, nil
}

// maxRetryAfter bounds a provider's Retry-After: a broken or hostile
// header must not stop refreshes for days.
const maxRetryAfter = time.Hour

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// hostOf is what logs show of a URL: enough to tell providers apart, without
// a path or query that might carry something private.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
