package returnurl

import (
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// maxNameLen and maxLabelLen are the DNS limits (RFC 1035 §2.3.4), which
// the IDNA Lookup profile does not enforce on its own.
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// asciiName maps a host name through IDNA Lookup to lower-case ASCII
// without a trailing dot, and accepts it only if the result is a plain LDH
// DNS name. Punycode labels stay punycode, so "xn--…" never equals the
// ASCII name it imitates.
func asciiName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return "", false
	}
	a = strings.TrimSuffix(strings.ToLower(a), ".")
	if a == "" || len(a) > maxNameLen {
		return "", false
	}
	// The result must be its own normal form, or a URL rebuilt from it
	// would name a host that was never checked.
	if again, err := idna.Lookup.ToASCII(a); err != nil || again != a {
		return "", false
	}
	for label := range strings.SplitSeq(a, ".") {
		if !ldhLabel(label) {
			return "", false
		}
	}
	return a, true
}

func ldhLabel(l string) bool {
	if l == "" || len(l) > maxLabelLen || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// numericLabel reports whether the WHATWG host parser would take a host
// ending in label l for an IPv4 address: all decimal digits, or "0x" and
// hex digits.
func numericLabel(l string) bool {
	if l == "" {
		return false
	}
	digits, isHex := l, false
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		digits, isHex = rest, true
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !(c >= '0' && c <= '9' || isHex && c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// escapeQuery percent-encodes the bytes of a raw query that must not
// appear literally in a URL (non-ASCII and a few ASCII delimiters), so the
// normalized URL is pure ASCII. Everything else is kept as the agent wrote
// it, because the query is the agent's own business.
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c > 0x20 && c < 0x7f && !strings.ContainsRune("\"<>`{}|^", rune(c)) {
			if b.Len() > 0 {
				b.WriteByte(c)
			}
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(q) + 16)
			b.WriteString(q[:i])
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	if b.Len() == 0 {
		return q
	}
	return b.String()
}

// entry is one parsed AllowedDomains element.
type entry struct {
	// scheme is "http" or "https" when the entry names one; "" means
	// https, or http for a loopback host.
	scheme string
	// wildcard: "*.name" matches one more label; deep ("**.name") any
	// number of labels (at least one).
	wildcard bool
	deep     bool
	name     string     // for names and wildcards
	addr     netip.Addr // for IP literals
	// port is the entry's port; 0 means the scheme's default port, or any
	// port for a loopback host; anyPort ("host:*") any port.
	port    uint16
	anyPort bool
}

// parseEntry reads an allowed-origin entry: [scheme://]host[:port], where
// host is a name, an IP address ([IPv6] when a port follows), "*.domain"
// (one more label) or "**.domain" (any depth), and port a number or "*".
func parseEntry(d string) (entry, bool) {
	d = strings.TrimSpace(d)
	var e entry
	for _, sch := range []string{"https", "http"} {
		if rest, ok := cutPrefixFold(d, sch+"://"); ok {
			e.scheme, d = sch, rest
			break
		}
	}
	if strings.ContainsAny(d, "/?#@") {
		return entry{}, false
	}
	hostPart, portPart, hasPort := splitPort(d)
	if hasPort {
		if portPart == "*" {
			e.anyPort = true
		} else {
			n, err := strconv.ParseUint(portPart, 10, 16)
			if err != nil || n == 0 || portPart[0] == '0' {
				return entry{}, false
			}
			e.port = uint16(n)
		}
	}
	if rest, ok := strings.CutPrefix(hostPart, "**."); ok {
		e.deep, hostPart = true, "*."+rest
	}
	if rest, ok := strings.CutPrefix(hostPart, "*."); ok {
		name, ok := asciiName(rest)
		if !ok || numericLabel(name[strings.LastIndexByte(name, '.')+1:]) {
			return entry{}, false
		}
		e.wildcard, e.name = true, name
		return e, true
	}
	if inner, ok := strings.CutPrefix(hostPart, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		if !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return entry{}, false
		}
		e.addr = a
		return e, true
	}
	if a, err := netip.ParseAddr(hostPart); err == nil {
		if a.Zone() != "" || (hasPort && a.Is6()) {
			return entry{}, false
		}
		e.addr = a
		return e, true
	}
	h, err := normalizeHost(hostPart, false)
	if err != nil {
		return entry{}, false
	}
	e.name, e.addr = h.name, h.addr
	return e, true
}

// splitPort splits "host:port" and "[v6]:port"; a bare IPv6 address (more
// than one colon, no brackets) has no port.
func splitPort(d string) (host, port string, ok bool) {
	if strings.HasPrefix(d, "[") {
		if i := strings.Index(d, "]:"); i >= 0 {
			return d[:i+1], d[i+2:], true
		}
		return d, "", false
	}
	if strings.Count(d, ":") == 1 {
		h, p, _ := strings.Cut(d, ":")
		return h, p, true
	}
	return d, "", false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// matches compares the whole origin: scheme, host and port.
func (e entry) matches(scheme string, h host, port uint16) bool {
	loop := h.loopback()
	switch {
	case e.scheme != "" && scheme != e.scheme:
		return false
	case e.scheme == "" && scheme != "https" && !loop:
		return false
	}
	switch {
	case e.anyPort:
	case e.port != 0:
		if port != e.port {
			return false
		}
	case !loop && port != defaultPort(scheme):
		return false
	}
	switch {
	case e.addr.IsValid():
		return h.addr == e.addr
	case h.name == "":
		return false
	case e.deep:
		return strings.HasSuffix(h.name, "."+e.name)
	case e.wildcard:
		sub, ok := strings.CutSuffix(h.name, "."+e.name)
		return ok && sub != "" && !strings.Contains(sub, ".")
	default:
		return h.name == e.name
	}
}

func defaultPort(scheme string) uint16 {
	if scheme == "http" {
		return 80
	}
	return 443
}
