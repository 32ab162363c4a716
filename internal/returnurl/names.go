package returnurl

import (
	"net/netip"
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
	wildcard bool
	name     string     // for names and wildcards
	addr     netip.Addr // for IP literals
}

func parseEntry(d string) (entry, bool) {
	d = strings.TrimSpace(d)
	if rest, ok := strings.CutPrefix(d, "*."); ok {
		name, ok := asciiName(rest)
		if !ok || numericLabel(name[strings.LastIndexByte(name, '.')+1:]) {
			return entry{}, false
		}
		return entry{wildcard: true, name: name}, true
	}
	if inner, ok := strings.CutPrefix(d, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		if !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return entry{}, false
		}
		return entry{addr: a}, true
	}
	if a, err := netip.ParseAddr(d); err == nil {
		if a.Zone() != "" {
			return entry{}, false
		}
		return entry{addr: a}, true
	}
	h, err := normalizeHost(d, false)
	if err != nil {
		return entry{}, false
	}
	return entry{name: h.name, addr: h.addr}, true
}

func (e entry) matches(h host) bool {
	switch {
	case e.addr.IsValid():
		return h.addr == e.addr
	case h.name == "":
		return false
	case e.wildcard:
		return strings.HasSuffix(h.name, "."+e.name)
	default:
		return h.name == e.name
	}
}
