package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// WithProxy makes HTTPClient send provider API calls through the gateway's
// API proxy (/v1/proxy/{connection_id}/…) instead of fetching the access
// token: the agent's code still calls the provider's URLs
// (api.Get("https://www.googleapis.com/oauth2/v3/userinfo")), the client
// rewrites each request for one of the provider's API bases onto the proxy
// route, and the gateway injects the token. The agent process never holds
// a token. Requests for any other host fail without being sent; redirects
// are returned to the caller, not followed. Agents whose key is proxy-only
// must use it.
func WithProxy() Option {
	return func(c *Client) error {
		c.proxy = true
		return nil
	}
}

// ProxyBases lists the provider API base URLs the gateway's proxy sends a
// connection's requests to, base 0 first.
func (c *Client) ProxyBases(ctx context.Context, connectionID string) ([]string, error) {
	p, err := connPath("/v1/proxy-bases", connectionID)
	if err != nil {
		return nil, err
	}
	var out struct {
		Bases []string `json:"api_base_urls"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, route: "/v1/proxy-bases/{id}", path: p}, &out); err != nil {
		return nil, err
	}
	return out.Bases, nil
}

// proxyHTTPClient is HTTPClient in proxy mode.
func (c *Client) proxyHTTPClient(ctx context.Context, id string) *http.Client {
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Transport: &proxyTransport{base: base, c: c, ctx: ctx, id: id},
		// The gateway hands redirects back rather than follow them with
		// the token; following one here would leave the proxy.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ErrNotProxied is returned (wrapped) for a request in proxy mode whose
// URL is under none of the connection's API bases: it is not sent.
var ErrNotProxied = errors.New("dromos: URL is not under the provider's API bases")

type proxyTransport struct {
	base http.RoundTripper
	c    *Client
	ctx  context.Context
	id   string

	mu    sync.Mutex
	bases []*url.URL // nil until read from the gateway
}

func (pt *proxyTransport) loadBases(ctx context.Context) ([]*url.URL, error) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.bases != nil {
		return pt.bases, nil
	}
	raw, err := pt.c.ProxyBases(ctx, pt.id)
	if err != nil {
		return nil, err
	}
	bases := make([]*url.URL, 0, len(raw))
	for _, b := range raw {
		u, err := url.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("dromos: the gateway listed an unreadable API base: %w", err)
		}
		bases = append(bases, u)
	}
	pt.bases = bases
	return bases, nil
}

func (pt *proxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	defer context.AfterFunc(pt.ctx, cancel)()
	bases, err := pt.loadBases(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	index, rest, ok := underBase(bases, req.URL)
	if !ok {
		closeBody(req)
		return nil, fmt.Errorf("%w: %s://%s%s (connection %s; bases %v)", ErrNotProxied, req.URL.Scheme, req.URL.Host, req.URL.EscapedPath(), pt.id, bases)
	}
	target, err := url.Parse(pt.c.base + "/v1/proxy/" + url.PathEscape(pt.id) + "/" + rest)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("dromos: building the proxy URL: %w", err)
	}
	target.RawQuery = req.URL.RawQuery
	out := req.Clone(req.Context())
	out.URL, out.Host = target, ""
	out.Header.Del("Authorization")
	out.Header.Del("Cookie")
	if pt.c.apiKey != "" {
		out.Header.Set("Authorization", "Bearer "+pt.c.apiKey)
	}
	if index > 0 {
		out.Header.Set("X-Dromos-Api-Base", strconv.Itoa(index))
	}
	return pt.base.RoundTrip(out)
}

// underBase finds the base u is under and the escaped path after it.
func underBase(bases []*url.URL, u *url.URL) (int, string, bool) {
	o := origin(u)
	for i, b := range bases {
		if origin(b) != o || o == "" || u.User != nil {
			continue
		}
		bp := strings.TrimSuffix(b.EscapedPath(), "/")
		p := u.EscapedPath()
		switch {
		case p == bp:
			return i, "", true
		case strings.HasPrefix(p, bp+"/"):
			return i, p[len(bp)+1:], true
		}
	}
	return 0, "", false
}
