package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
)

// Error codes of the proxy's own refusals (the envelope's code).
const (
	// CodeNotConfigured: the connection's provider has no API base URLs.
	CodeNotConfigured = "proxy_not_configured"
	// CodePathRefused: the path would leave the base, or is not a path.
	CodePathRefused = "proxy_path_refused"
	// CodeUpstreamTimeout: the provider's API did not answer in time.
	CodeUpstreamTimeout = "upstream_timeout"
	// CodeUpstreamError: the provider's API could not be reached or
	// answered with something that cannot be passed on.
	CodeUpstreamError = "upstream_error"
)

// BaseHeader picks one of a connection's API bases by index, like the
// base query parameter.
const BaseHeader = "X-Dromos-Api-Base"

// API is a provider's proxy configuration as its profile holds it.
type API struct {
	BaseURLs            []string
	BaseURLProviderData string
	Auth                *provider.APIAuth
}

// Target is where one connection's requests may go and how its token is
// presented. It holds no token.
type Target struct {
	// Provider is the provider's name, a metrics label.
	Provider string
	bases    []*url.URL
	header   string // the header the token goes in
	prefix   string
	constant http.Header
}

// Resolve builds a connection's Target from its provider's API
// configuration and the connection's provider data.
func Resolve(providerName string, api API, providerData map[string]string) (Target, error) {
	t := Target{Provider: providerName}
	if name := api.BaseURLProviderData; name != "" {
		if v := providerData[name]; v != "" {
			u, err := originURL(v)
			if err != nil {
				return Target{}, httpapi.BadGateway(CodeNotConfigured, "the connection's API address from the provider is not usable",
					fmt.Errorf("provider data %s: %w", name, err))
			}
			t.bases = append(t.bases, u)
		}
	}
	for _, b := range api.BaseURLs {
		if err := provider.CheckAPIBaseURL(b); err != nil {
			return Target{}, httpapi.BadGateway(CodeNotConfigured, "the provider's API base URLs are not usable", err)
		}
		u, _ := url.Parse(strings.TrimSuffix(b, "/"))
		t.bases = append(t.bases, u)
	}
	if len(t.bases) == 0 {
		return Target{}, &httpapi.Error{Status: http.StatusConflict, Code: CodeNotConfigured,
			Message: fmt.Sprintf("provider %q has no api_base_urls: the API proxy cannot reach it", providerName)}
	}
	t.header, t.prefix = api.Auth.TokenHeader()
	if api.Auth != nil && len(api.Auth.Headers) > 0 {
		t.constant = make(http.Header, len(api.Auth.Headers))
		for k, v := range api.Auth.Headers {
			t.constant.Set(k, v)
		}
	}
	return t, nil
}

// originURL accepts an http(s) origin (a trailing '/' allowed), as
// Salesforce's instance_url is.
func originURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return nil, errors.New("not a URL")
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.Opaque != "":
		return nil, errors.New("not an absolute http(s) URL")
	case u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "", u.Path != "" && u.Path != "/":
		return nil, errors.New("not an origin")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Bases lists the target's base URLs, base 0 first.
func (t Target) Bases() []string {
	out := make([]string, len(t.bases))
	for i, b := range t.bases {
		out[i] = b.String()
	}
	return out
}

func pathRefused(format string, args ...any) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusBadRequest, Code: CodePathRefused, Message: fmt.Sprintf(format, args...)}
}

// URL is the upstream URL for an escaped path under the chosen base (the
// part of the proxy route after the connection id, without its leading
// '/') and the agent's raw query. base is the index the agent chose, ""
// for the first. The path must stay under the base: every segment must be
// non-empty (except a trailing one), not "." or "..", with no
// percent-encoded '/', '\', '.' or '..' segment and no control characters;
// the first segment may not look like a URL scheme.
func (t Target) URL(base, escapedPath, rawQuery string) (*url.URL, error) {
	i := 0
	if base != "" {
		n, err := strconv.Atoi(base)
		if err != nil || n < 0 || n >= len(t.bases) || strconv.Itoa(n) != base {
			return nil, &httpapi.Error{Status: http.StatusBadRequest, Code: httpapi.CodeBadRequest,
				Message: fmt.Sprintf("API base must be an index from 0 to %d", len(t.bases)-1)}
		}
		i = n
	}
	b := t.bases[i]
	decoded, err := checkPath(escapedPath)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(rawQuery, " \\#") || hasControl(rawQuery) {
		return nil, pathRefused("the query string holds characters that must be percent-encoded")
	}
	u := &url.URL{Scheme: b.Scheme, Host: b.Host, Path: b.Path + "/" + decoded, RawQuery: rawQuery}
	if raw := b.Path + "/" + escapedPath; raw != u.Path {
		u.RawPath = raw
	}
	// The second line of defence: whatever the checks above let through
	// must still be under the base.
	if u.Host != b.Host || !strings.HasPrefix(u.Path, b.Path+"/") || u.User != nil {
		return nil, pathRefused("the path leaves the API base")
	}
	return u, nil
}

// checkPath checks an escaped path and returns it decoded.
func checkPath(escaped string) (string, error) {
	if escaped == "" {
		return "", nil
	}
	segs := strings.Split(escaped, "/")
	for n, seg := range segs {
		if seg == "" {
			if n == len(segs)-1 {
				continue // a trailing slash
			}
			return "", pathRefused("the path must not hold empty segments ('//'), which could name another host")
		}
		dec, err := url.PathUnescape(seg)
		switch {
		case err != nil:
			return "", pathRefused("the path holds a malformed percent-encoding")
		case dec == "." || dec == "..":
			return "", pathRefused("the path must not hold '.' or '..' segments, plain or percent-encoded")
		case strings.ContainsAny(dec, "/\\"):
			return "", pathRefused("the path must not hold an encoded '/' or '\\'")
		case hasControl(dec):
			return "", pathRefused("the path must not hold control characters")
		case n == 0 && strings.Contains(dec, ":"):
			return "", pathRefused("the path must be relative to the API base, not an absolute URL")
		}
	}
	dec, _ := url.PathUnescape(escaped)
	return dec, nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
