package returnurl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLength is the longest return URL accepted, in bytes.
const MaxLength = 2048

// Sentinel errors; every error Check returns is an *Error wrapping one.
var (
	ErrMalformed  = errors.New("malformed return URL")
	ErrInsecure   = errors.New("return URL is not https")
	ErrNotAllowed = errors.New("return URL host is not allowed")
)

// Error is a refused return URL. Reason is short and safe to show to the
// caller: it never quotes more of the input than its normalized host.
type Error struct {
	Kind   error // ErrMalformed, ErrInsecure or ErrNotAllowed
	Reason string
}

func (e *Error) Error() string { return "return_url " + e.Reason }
func (e *Error) Unwrap() error { return e.Kind }

func malformed(reason string) error { return &Error{Kind: ErrMalformed, Reason: reason} }

// Policy says which return URLs are acceptable.
type Policy struct {
	// AllowedDomains are the allowed origins, [scheme://]host[:port]:
	// host is exact ("app.example.com", an IP literal such as "127.0.0.1"
	// or "[::1]"), "*.example.com" (exactly one more label: a.example.com,
	// not a.b.example.com nor example.com) or "**.example.com" (any
	// depth). Without a scheme an entry allows https, and http only for a
	// loopback host; without a port, the scheme's default port only (any
	// port for a loopback host, as local development needs); ":*" allows
	// any port. Unicode names are allowed and compared in their ASCII
	// form. When empty, every host that passes the structural checks is
	// allowed.
	AllowedDomains []string
	// RequireHTTPS refuses http except for loopback hosts (localhost,
	// 127.0.0.0/8, ::1), which a local agent needs during development.
	RequireHTTPS bool
}

// Check validates raw against the policy and returns it normalized: scheme
// and host lower-case, host in ASCII (punycode) without a trailing dot, IP
// literals in canonical form, port without leading zeros.
func (p Policy) Check(raw string) (*url.URL, error) {
	u, h, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if p.RequireHTTPS && u.Scheme != "https" && !h.loopback() {
		return nil, &Error{Kind: ErrInsecure, Reason: "must use https"}
	}
	if len(p.AllowedDomains) > 0 && !p.allows(u, h) {
		return nil, &Error{Kind: ErrNotAllowed, Reason: "origin " + u.Scheme + "://" + u.Host + " is not in the allowed domains"}
	}
	return u, nil
}

// Validate reports AllowedDomains entries that can never match anything
// (they are ignored by Check), and wildcards so broad they cover a whole
// top-level domain, so configuration can refuse them at start. Entries are
// named by position, not quoted.
func (p Policy) Validate() error {
	var errs []error
	for i, d := range p.AllowedDomains {
		e, ok := parseEntry(d)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("allowed domain entry %d is not [http(s)://]host[:port] with host a name, *.domain, **.domain or IP address", i+1))
		case e.wildcard && !strings.Contains(e.name, "."):
			errs = append(errs, fmt.Errorf("allowed domain entry %d is a wildcard over a whole top-level domain", i+1))
		}
	}
	return errors.Join(errs...)
}

func (p Policy) allows(u *url.URL, h host) bool {
	port := defaultPort(u.Scheme)
	if s := u.Port(); s != "" {
		n, _ := strconv.ParseUint(s, 10, 16) // parse checked it
		port = uint16(n)
	}
	for _, d := range p.AllowedDomains {
		e, ok := parseEntry(d)
		if ok && e.matches(u.Scheme, h, port) {
			return true
		}
	}
	return false
}

// host is a normalized host: either an IP address or an ASCII DNS name.
type host struct {
	addr netip.Addr // valid for IP literals
	name string     // lower-case ASCII, no trailing dot, for names
}

func (h host) String() string {
	if h.addr.IsValid() {
		return h.addr.String()
	}
	return h.name
}

func (h host) loopback() bool {
	if h.addr.IsValid() {
		return h.addr.Unmap().IsLoopback()
	}
	return h.name == "localhost"
}

// parse runs the structural checks and returns the normalized URL.
func parse(raw string) (*url.URL, host, error) {
	if raw == "" {
		return nil, host{}, malformed("is empty")
	}
	if len(raw) > MaxLength {
		return nil, host{}, malformed(fmt.Sprintf("is longer than %d bytes", MaxLength))
	}
	if err := checkChars(raw); err != nil {
		return nil, host{}, err
	}
	if strings.HasPrefix(raw, "//") {
		return nil, host{}, malformed("must not be scheme-relative")
	}
	if strings.Contains(raw, "#") {
		return nil, host{}, malformed("must not contain a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, host{}, malformed("is not a valid URL")
	}
	if u.Scheme == "" {
		return nil, host{}, malformed("must be an absolute URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, host{}, malformed("must use http or https")
	}
	// "https:evil.com" and "https:/evil.com" parse without a host in Go
	// but browsers treat them as hosts; only the "scheme://" form passes.
	if u.Opaque != "" || u.Host == "" || !strings.HasPrefix(raw[len(u.Scheme)+1:], "//") {
		return nil, host{}, malformed("must be an absolute URL with a host")
	}
	if u.User != nil {
		return nil, host{}, malformed("must not contain credentials")
	}
	// Go decodes percent-escapes in the host, which can yield bytes that
	// are not UTF-8 and names that differ from what was written; no
	// legitimate return URL needs them.
	authority := raw[len(u.Scheme)+3:]
	if i := strings.IndexAny(authority, "/?"); i >= 0 {
		authority = authority[:i]
	}
	if strings.Contains(authority, "%") {
		return nil, host{}, malformed("must not percent-encode the host")
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return nil, host{}, malformed("has an invalid port")
		}
		port = strconv.FormatUint(n, 10)
	}
	h, err := normalizeHost(u.Hostname(), strings.HasPrefix(u.Host, "["))
	if err != nil {
		return nil, host{}, err
	}
	hostport := h.name
	if h.addr.Is6() {
		hostport = "[" + h.addr.String() + "]"
	} else if h.addr.IsValid() {
		hostport = h.addr.String()
	}
	if port != "" {
		hostport += ":" + port
	}
	out := &url.URL{
		Scheme:     u.Scheme,
		Host:       hostport,
		Path:       u.Path,
		RawPath:    u.RawPath,
		RawQuery:   escapeQuery(u.RawQuery),
		ForceQuery: u.ForceQuery,
	}
	return out, h, nil
}

// checkChars refuses what browsers strip, fold or reinterpret before
// parsing: a backslash becomes '/', tabs and newlines vanish, invisible
// format characters hide the real host from a human reviewer.
func checkChars(raw string) error {
	if !utf8.ValidString(raw) {
		return malformed("is not valid UTF-8")
	}
	if strings.ContainsRune(raw, '\\') {
		return malformed("must not contain a backslash")
	}
	for _, r := range raw {
		switch {
		case unicode.IsSpace(r):
			return malformed("must not contain whitespace")
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return malformed("must not contain control or invisible characters")
		}
	}
	return nil
}

// normalizeHost maps a URL host to its comparable form. bracketed says the
// URL wrote it as [IPv6].
func normalizeHost(hostname string, bracketed bool) (host, error) {
	if bracketed {
		a, err := netip.ParseAddr(hostname)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return host{}, malformed("has an invalid IPv6 address")
		}
		return host{addr: a}, nil
	}
	name, ok := asciiName(hostname)
	if !ok {
		return host{}, malformed("has an invalid host name")
	}
	// IDNA maps full-width digits and ideographic full stops, so an IPv4
	// literal can appear only after mapping.
	if a, err := netip.ParseAddr(name); err == nil {
		if !a.Is4() {
			return host{}, malformed("has an invalid host name")
		}
		return host{addr: a}, nil
	}
	// WHATWG URL parsing reads a host whose last label is numeric as an
	// IPv4 address in shorthand ("2130706433", "0x7f.1", "127.1"); such a
	// host would reach an address no allow-list entry names.
	if numericLabel(name[strings.LastIndexByte(name, '.')+1:]) {
		return host{}, malformed("has a numeric host that is not a dotted-quad IPv4 address")
	}
	return host{name: name}, nil
}
