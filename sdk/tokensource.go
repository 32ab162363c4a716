package sdk

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

const (
	// expiryMargin: a cached token is replaced this long before it
	// expires, so a request never leaves with a token about to die.
	expiryMargin = 30 * time.Second
	// noExpiryTTL: a token without expiry is asked for again after this
	// long, so a revocation or re-consent is noticed.
	noExpiryTTL = time.Minute
	// defaultRefreshCooldown: after a forced renewal, a 401 does not force
	// another one for this long. An API that answers 401 for reasons that
	// are not the token (no access to that resource) must not cost one
	// provider refresh per request.
	defaultRefreshCooldown = 30 * time.Second
)

// errRenewCooldown: renew declined because the last forced renewal is too
// recent; the caller gets the provider's 401.
var errRenewCooldown = errors.New("dromos: token renewed moments ago; not renewing again")

// tokenSource caches one connection's token. The mutex is held across the
// gateway call, so concurrent callers wait for one fetch instead of each
// making their own.
type tokenSource struct {
	c   *Client
	ctx context.Context
	id  string

	mu      sync.Mutex
	cur     *Token
	until   time.Time // cur is handed out before this instant
	renewed time.Time // when renew last asked the gateway; zero if never
}

// TokenSource returns an oauth2.TokenSource for the connection, so that
// oauth2.NewClient(ctx, client.TokenSource(ctx, id)) is an *http.Client
// that calls the provider's API as the user. It is safe for concurrent use
// and keeps a token until 30 s before it expires (half its remaining life
// if that is shorter; one minute when it has no expiry), then asks the
// gateway again. ctx bounds those gateway calls, as in package oauth2.
func (c *Client) TokenSource(ctx context.Context, connectionID string) oauth2.TokenSource {
	return c.newTokenSource(ctx, connectionID)
}

func (c *Client) newTokenSource(ctx context.Context, id string) *tokenSource {
	if ctx == nil {
		ctx = context.Background()
	}
	return &tokenSource{c: c, ctx: ctx, id: id}
}

// Token implements oauth2.TokenSource.
func (ts *tokenSource) Token() (*oauth2.Token, error) {
	t, err := ts.current(ts.ctx)
	if err != nil {
		return nil, err
	}
	return t.OAuth2(), nil
}

// current returns the cached token while it is fresh, else fetches one.
func (ts *tokenSource) current(ctx context.Context) (*Token, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.cur != nil && ts.c.now().Before(ts.until) {
		return ts.cur, nil
	}
	t, err := ts.c.GetToken(ctx, ts.id)
	if err != nil {
		return nil, err
	}
	ts.keep(t)
	return t, nil
}

// renew replaces a token the provider refused: a forced refresh, or a plain
// read when the gateway cannot force one. When another caller already
// replaced the refused token, that replacement is used instead of
// refreshing again. Within the client's refresh cooldown after the last
// renewal it asks the gateway for nothing and returns errRenewCooldown: a
// token that fresh being refused says more about the request than about
// the token.
func (ts *tokenSource) renew(ctx context.Context, refused string) (*Token, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.c.now()
	if ts.cur != nil && ts.cur.AccessToken != refused && now.Before(ts.until) {
		return ts.cur, nil
	}
	if !ts.renewed.IsZero() && now.Sub(ts.renewed) < ts.c.refreshCooldown {
		return nil, errRenewCooldown
	}
	t, err := ts.c.Refresh(ctx, ts.id)
	if errors.Is(err, ErrNotSupported) {
		t, err = ts.c.GetToken(ctx, ts.id)
	}
	// A renewal cut short by the caller's context did not reach a verdict,
	// so it does not start the cooldown; one the gateway answered does,
	// even with an error, so a failing gateway is not asked per request.
	if err == nil || ctx.Err() == nil {
		ts.renewed = ts.c.now()
	}
	if err != nil {
		return nil, err
	}
	ts.keep(t)
	return t, nil
}

func (ts *tokenSource) keep(t *Token) {
	now := ts.c.now()
	ts.cur = t
	if t.ExpiresAt.IsZero() {
		ts.until = now.Add(noExpiryTTL)
		return
	}
	left := t.ExpiresAt.Sub(now)
	ts.until = t.ExpiresAt.Add(-min(expiryMargin, left/2))
}

// HTTPClient returns an *http.Client that calls a provider's API as the
// connection's user: each request carries the current access token (cached
// as by TokenSource). The token goes only to the origin (scheme, host and
// port) of the request the caller made: when the API redirects elsewhere,
// the redirect is followed without it, as net/http does for headers a
// caller sets. When the provider answers 401 — the token was revoked or
// expired early — the client forces one refresh through the gateway and
// sends the request once more with the new token; a second 401 is returned
// as it is, never looped. After a forced refresh, further 401s within 30
// seconds are returned as they are, without another refresh: an API that
// refuses a request for a reason other than the token costs at most one
// refresh per 30 seconds. A request whose body cannot be replayed (no
// GetBody) gets its first 401 back. Gateway calls end when ctx or the
// request's context ends. The returned client has no timeout; set one on
// it if you want one. Keep and reuse the client: its token cache lives in
// it.
//
// With WithProxy, the client sends each request through the gateway's API
// proxy instead, and never fetches the token (see WithProxy).
func (c *Client) HTTPClient(ctx context.Context, connectionID string) *http.Client {
	if c.proxy {
		return c.proxyHTTPClient(ctx, connectionID)
	}
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: &bearerTransport{base: base, ts: c.newTokenSource(ctx, connectionID)}}
}

type bearerTransport struct {
	base http.RoundTripper
	ts   *tokenSource
}

func (bt *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if o := origin(req.URL); o == "" || o != origin(initialRequest(req).URL) {
		// net/http is following a redirect to another origin: send the
		// request on as it is, without the token, and do not renew on its
		// 401 either.
		return bt.send(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	defer context.AfterFunc(bt.ts.ctx, cancel)()

	tok, err := bt.ts.current(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := bt.send(withBearer(req, tok, nil))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable {
		return resp, err
	}
	var body io.ReadCloser
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	log := bt.ts.c.log
	fresh, err := bt.ts.renew(ctx, tok.AccessToken)
	if err != nil || fresh.AccessToken == tok.AccessToken {
		if body != nil {
			body.Close()
		}
		switch {
		case errors.Is(err, errRenewCooldown):
			log.LogAttrs(req.Context(), slog.LevelDebug, "dromos: provider refused a token renewed moments ago; returning its 401",
				slog.String("connection_id", bt.ts.id))
		case err != nil:
			log.LogAttrs(req.Context(), slog.LevelWarn, "dromos: provider refused the token and renewing it failed",
				slog.String("connection_id", bt.ts.id), slog.String("error", err.Error()))
		}
		return resp, nil
	}
	log.LogAttrs(req.Context(), slog.LevelDebug, "dromos: provider refused the token; retrying once with a renewed one",
		slog.String("connection_id", bt.ts.id))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return bt.send(withBearer(req, fresh, body))
}

// send is the base transport's RoundTrip, making sure the response names
// its request: initialRequest follows that link back through redirects.
func (bt *bearerTransport) send(req *http.Request) (*http.Response, error) {
	resp, err := bt.base.RoundTrip(req)
	if resp != nil && resp.Request == nil {
		resp.Request = req
	}
	return resp, err
}

// initialRequest is the request the caller made, found from a redirect hop
// through Response.Request as net/http links them. A chain it cannot
// follow ends at a request with no URL, whose origin matches none, so the
// token is withheld rather than guessed.
func initialRequest(req *http.Request) *http.Request {
	for req.Response != nil {
		if req.Response.Request == nil {
			return &http.Request{URL: &url.URL{}}
		}
		req = req.Response.Request
	}
	return req
}

// origin is scheme://host:port with the default port filled in, so that
// http://api.example and http://api.example:80 are one origin. A URL
// without scheme or host has the origin "".
func origin(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	if scheme == "" || host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// withBearer is a copy of req with the token set (and body, when given);
// a RoundTripper must not change the request it was handed. An api_key or
// basic connection's credential goes where its injection rule says.
func withBearer(req *http.Request, tok *Token, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	if c := tok.Credential; c != nil {
		r.Header.Set(c.Header, c.HeaderValue())
	} else {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	if body != nil {
		r.Body = body
	}
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
