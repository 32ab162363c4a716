package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/netguard"
)

// Guard judges a URL before it is fetched: nil to go ahead, else an error
// wrapping netguard.ErrBlocked or netguard.ErrInvalidURL.
type Guard func(ctx context.Context, rawURL string) error

// maxBody bounds every document read from a remote server.
const maxBody = 1 << 20

// Options configure a Discoverer.
type Options struct {
	// HTTPClient makes every request (redirects are never followed).
	HTTPClient *http.Client
	// Guard checks each URL before it is fetched; nil accepts any URL
	// DevGuard accepts.
	Guard Guard
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// Discoverer runs discovery and registration. Safe for concurrent use.
type Discoverer struct {
	hc      *http.Client
	guard   Guard
	timeout time.Duration
	ua      string
}

// New returns a Discoverer.
func New(o Options) *Discoverer {
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if o.HTTPClient != nil {
		hc.Transport = o.HTTPClient.Transport
	}
	if o.Guard == nil {
		o.Guard = DevGuard
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "dromos-mcp"
	}
	return &Discoverer{hc: hc, guard: o.Guard, timeout: o.Timeout, ua: o.UserAgent}
}

// response is what a fetch keeps of an answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (d *Discoverer) do(ctx context.Context, method, rawURL string, body []byte, header http.Header) (response, error) {
	if err := d.guard(ctx, rawURL); err != nil {
		return response{}, guardErr(rawURL, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return response{}, fail(CodeInvalidURL, err, "%s is not a usable URL", safeURL(rawURL))
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", d.ua)
	resp, err := d.hc.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			return response{}, fail(CodeBlockedAddress, err, "%s resolves to a loopback, private, link-local or metadata address", safeURL(rawURL))
		}
		return response{}, fail(CodeUnreachable, err, "%s could not be reached", safeURL(rawURL))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return response{}, fail(CodeUnreachable, err, "reading the answer of %s failed", safeURL(rawURL))
	}
	if len(b) > maxBody {
		return response{}, fail(CodeBadMetadata, nil, "the answer of %s is larger than %d bytes", safeURL(rawURL), maxBody)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func guardErr(rawURL string, err error) *Error {
	if errors.Is(err, netguard.ErrBlocked) {
		return fail(CodeBlockedAddress, err, "%s points at a loopback, private, link-local or metadata address", safeURL(rawURL))
	}
	return fail(CodeInvalidURL, err, "%s is not acceptable (https with a public host is required in production)", safeURL(rawURL))
}

// getJSON fetches a JSON document. found is false for a 404 (or 405/410,
// which some servers answer for well-known paths they do not serve).
func (d *Discoverer) getJSON(ctx context.Context, rawURL string, v any) (found bool, err error) {
	r, err := d.do(ctx, http.MethodGet, rawURL, nil, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return false, err
	}
	switch {
	case r.status == http.StatusNotFound || r.status == http.StatusGone || r.status == http.StatusMethodNotAllowed:
		return false, nil
	case r.status >= 300 && r.status < 400:
		return false, fail(CodeBadMetadata, nil, "%s answered a redirect; redirects are not followed", safeURL(rawURL))
	case r.status != http.StatusOK:
		return false, fail(CodeBadMetadata, nil, "%s answered HTTP %d", safeURL(rawURL), r.status)
	}
	if err := decodeJSON(r, v); err != nil {
		return false, fail(CodeBadMetadata, err, "%s did not answer a JSON object", safeURL(rawURL))
	}
	return true, nil
}

func decodeJSON(r response, v any) error {
	if ct := r.header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return fmt.Errorf("content type %q", ct)
		}
	}
	trimmed := bytes.TrimSpace(r.body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(trimmed, v)
}

// safeURL is a URL fit for an error message: without query or userinfo.
func safeURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if len(raw) > 200 {
		raw = raw[:200] + "…"
	}
	return raw
}

// ProductionGuard is the Guard of production: https only, and no host
// that resolves to a loopback, private, link-local or metadata address.
// The dial-time check of netguard's transport still applies, so a name
// that resolves differently later gains nothing. resolver nil is the
// system resolver.
func ProductionGuard(resolver *net.Resolver) Guard {
	return func(ctx context.Context, raw string) error {
		if err := netguard.CheckURL(raw, false); err != nil {
			return err
		}
		u, err := url.Parse(raw)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return netguard.CheckHost(cctx, resolver, u.Hostname())
	}
}

// DevGuard accepts http and private addresses but still refuses cloud
// metadata addresses given as literals.
func DevGuard(ctx context.Context, raw string) error {
	if err := netguard.CheckURL(raw, true); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		if c := netguard.Classify(a, true); c != "" {
			return &netguard.BlockedError{Addr: a, Class: c}
		}
	}
	return nil
}
