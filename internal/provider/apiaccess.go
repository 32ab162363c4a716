package provider

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// APIAuth says how the gateway's API proxy presents a connection's access
// token to the provider's API. The zero value (and a nil *APIAuth) is
// "Authorization: Bearer TOKEN".
type APIAuth struct {
	// Header carries the token; empty means Authorization.
	Header string `json:"header,omitempty"`
	// Prefix goes before the token. With Header empty it defaults to
	// "Bearer "; with Header set it is used exactly as given (Shopify's
	// X-Shopify-Access-Token takes the bare token).
	Prefix string `json:"prefix,omitempty"`
	// Headers are constant headers sent with every proxied request (an API
	// version such as Notion-Version). Stored and shown in the clear: not a
	// place for secrets.
	Headers map[string]string `json:"headers,omitempty"`
}

// TokenHeader is the header name and value prefix the token goes in.
func (a *APIAuth) TokenHeader() (name, prefix string) {
	if a == nil || a.Header == "" {
		if a != nil && a.Prefix != "" {
			return "Authorization", a.Prefix
		}
		return "Authorization", "Bearer "
	}
	return http.CanonicalHeaderKey(a.Header), a.Prefix
}

// Limits on the API access fields.
const (
	maxAPIBaseURLs  = 16
	maxAPIURLLen    = 512
	maxAPIHeaders   = 8
	maxAPIPrefixLen = 32
)

// proxyOwnedHeaders are set by the proxy or by net/http, or are
// connection-level; a profile may not fix them.
var proxyOwnedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Keep-Alive": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Cookie": true, "Authorization": true,
}

var providerDataNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// normalizeAPI trims the API access fields and drops a trailing '/' from
// each base URL, so that a base joins a path with exactly one '/'.
func (p *Profile) normalizeAPI() {
	var bases []string
	for _, b := range p.APIBaseURLs {
		b = strings.TrimSuffix(strings.TrimSpace(b), "/")
		if b != "" && !slices.Contains(bases, b) {
			bases = append(bases, b)
		}
	}
	p.APIBaseURLs = bases
	p.APIBaseURLProviderData = strings.TrimSpace(p.APIBaseURLProviderData)
	if a := p.APIAuth; a != nil {
		a.Header = strings.TrimSpace(a.Header)
		if a.Header != "" {
			a.Header = http.CanonicalHeaderKey(a.Header)
		}
		if h, dup := CanonicalHeaders(a.Headers); dup == "" {
			a.Headers = h
		}
		if a.Header == "" && a.Prefix == "" && len(a.Headers) == 0 {
			p.APIAuth = nil
		}
	}
}

// apiProblems lists what is wrong with the API access fields.
func (p *Profile) apiProblems() []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if len(p.APIBaseURLs) > maxAPIBaseURLs {
		add("api_base_urls may hold at most %d URLs", maxAPIBaseURLs)
	}
	for i, b := range p.APIBaseURLs {
		if err := CheckAPIBaseURL(b); err != nil {
			add("api_base_urls[%d] %v", i, err)
		}
	}
	if n := p.APIBaseURLProviderData; n != "" && !providerDataNameRE.MatchString(n) {
		add("api_base_url_provider_data must name a provider data member (letters, digits, '_', '.', '-')")
	}
	a := p.APIAuth
	if a == nil {
		return probs
	}
	if a.Header != "" {
		if !httpguts.ValidHeaderFieldName(a.Header) {
			add("api_auth.header is not a valid header name")
		} else if c := http.CanonicalHeaderKey(a.Header); proxyOwnedHeaders[c] && c != "Authorization" {
			add("api_auth.header may not be %s", c)
		}
	}
	if len(a.Prefix) > maxAPIPrefixLen || !httpguts.ValidHeaderFieldValue(a.Prefix) || strings.TrimLeft(a.Prefix, " ") != a.Prefix {
		add("api_auth.prefix must be at most %d printable characters, not starting with a space", maxAPIPrefixLen)
	}
	if _, dup := CanonicalHeaders(a.Headers); dup != "" {
		add("api_auth.headers names %s twice", dup)
	}
	if len(a.Headers) > maxAPIHeaders {
		add("api_auth.headers may hold at most %d headers", maxAPIHeaders)
	}
	tokenHeader, _ := a.TokenHeader()
	for _, k := range slices.Sorted(maps.Keys(a.Headers)) {
		v, c := a.Headers[k], http.CanonicalHeaderKey(k)
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			add("api_auth.headers: %q is not a valid header name", k)
		case proxyOwnedHeaders[c] || c == tokenHeader:
			add("api_auth.headers may not set %s", c)
		case v == "" || len(v) > 256 || !httpguts.ValidHeaderFieldValue(v) || strings.TrimSpace(v) != v:
			add("api_auth.headers: the value of %s must be 1-256 printable characters without surrounding spaces", c)
		}
	}
	return probs
}

// CheckAPIBaseURL says what is wrong with an API base URL: it must be an
// absolute http(s) URL without userinfo, query or fragment, whose path (if
// any) is plain: no empty, "." or ".." segment and no percent-encoding, so
// that the proxy's path check means what it says.
func CheckAPIBaseURL(raw string) error {
	if len(raw) > maxAPIURLLen {
		return fmt.Errorf("must be at most %d bytes", maxAPIURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("must be an http(s) URL")
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("must be an absolute URL")
	case u.User != nil:
		return fmt.Errorf("must not contain credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return fmt.Errorf("must not have a query or fragment")
	case strings.Contains(raw, "%") || strings.ContainsAny(raw, " \\"):
		return fmt.Errorf("must not contain percent-encoding, spaces or backslashes")
	}
	if u.Path != "" {
		for _, seg := range strings.Split(strings.TrimPrefix(strings.TrimSuffix(u.Path, "/"), "/"), "/") {
			if seg == "" || seg == "." || seg == ".." {
				return fmt.Errorf("must have a plain path (no empty, '.' or '..' segments)")
			}
		}
	}
	return nil
}
