package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrInvalidURL is wrapped by every refusal from CheckURL.
var ErrInvalidURL = errors.New("netguard: unacceptable provider URL")

const maxURLLen = 2048

func invalidURL(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidURL, reason) }

// CheckURL judges the shape of a provider endpoint URL: absolute https
// (http too when allowHTTP, for development), a host that is a DNS name or
// an IP literal, no credentials, no fragment. It does not resolve the host;
// CheckHost does, and the guarded Dialer has the last word at connect time.
// Messages never quote the URL, which may carry secrets in its query.
func CheckURL(raw string, allowHTTP bool) error {
	if raw == "" || len(raw) > maxURLLen {
		return invalidURL(fmt.Sprintf("must be 1 to %d bytes", maxURLLen))
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return invalidURL("contains whitespace, control, non-ASCII or backslash characters")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalidURL("does not parse")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return invalidURL("must use https")
	default:
		return invalidURL("must be an absolute https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return invalidURL("has no host")
	}
	if u.User != nil {
		return invalidURL("must not contain credentials")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalidURL("must not contain a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return invalidURL("has an invalid port")
		}
	}
	if !validHost(u.Hostname(), strings.HasPrefix(u.Host, "[")) {
		return invalidURL("has an invalid host")
	}
	return nil
}

// validHost accepts an IP literal without zone or an LDH DNS name whose
// last label is not numeric (resolvers read "2130706433" or "127.1" as
// IPv4 addresses, hiding the real destination from a reviewer).
func validHost(h string, bracketed bool) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == "" && a.Is6() == bracketed
	}
	if bracketed || h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return !numericLabel(strings.ToLower(labels[len(labels)-1]))
}

// numericLabel reports whether a final label makes resolvers read the name
// as an IPv4 address: decimal digits, or "0x" and hex digits.
func numericLabel(l string) bool {
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

// CheckHost resolves host (a name or IP literal, optionally bracketed or
// with a port) and refuses it if any address it has is one Classify
// refuses: the dialer may pick any of them. resolver nil means the system
// resolver. It is meant for registration time; the guarded Dialer repeats
// the check on every connection.
func CheckHost(ctx context.Context, resolver *net.Resolver, host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if inner, ok := strings.CutPrefix(host, "["); ok {
		host = strings.TrimSuffix(inner, "]")
	}
	if host == "" {
		return fmt.Errorf("%w: empty host", ErrBlocked)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if c := Classify(a, false); c != "" {
			return &BlockedError{Addr: a.WithZone("").Unmap(), Class: c}
		}
		return nil
	}
	if resolver == nil {
		resolver = new(net.Resolver)
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("netguard: resolving %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("netguard: %s has no addresses", host)
	}
	for _, a := range addrs {
		if c := Classify(a, false); c != "" {
			return &BlockedError{Host: host, Addr: a.WithZone("").Unmap(), Class: c}
		}
	}
	return nil
}
