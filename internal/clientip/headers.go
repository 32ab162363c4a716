package clientip

import (
	"net/netip"
	"strings"
)

// Both parsers return one entry per hop, left to right, with the zero Addr
// for a hop that names no usable address. Empty list elements are skipped,
// as HTTP list syntax requires.

// parseXFF reads X-Forwarded-For lines. Besides bare addresses it accepts
// the "addr:port" and "[v6]:port" forms some load balancers write.
func parseXFF(lines []string) []netip.Addr {
	var hops []netip.Addr
	for _, line := range lines {
		for entry := range strings.SplitSeq(line, ",") {
			entry = strings.Trim(entry, " \t")
			if entry == "" {
				continue
			}
			hops = append(hops, parseNode(entry))
		}
	}
	return hops
}

// parseForwarded reads the for= parameter of each RFC 7239 forwarded-element.
// A line that breaks the grammar counts as one unusable hop: its elements
// cannot be told apart, but lines added after it by other proxies remain
// readable.
func parseForwarded(lines []string) []netip.Addr {
	var hops []netip.Addr
	for _, line := range lines {
		h, ok := parseForwardedLine(line)
		if !ok {
			hops = append(hops, netip.Addr{})
			continue
		}
		hops = append(hops, h...)
	}
	return hops
}

func parseForwardedLine(s string) ([]netip.Addr, bool) {
	var hops []netip.Addr
	p := lexer{s: s}
	for {
		p.skipOWS()
		if p.done() {
			return hops, true
		}
		if p.peek() == ',' {
			p.i++
			continue
		}
		node, seen, ok := p.element()
		if !ok {
			return nil, false
		}
		if seen == 1 {
			hops = append(hops, parseNode(node))
		} else {
			// An element without for=, or with two, says nothing
			// trustworthy about this hop.
			hops = append(hops, netip.Addr{})
		}
	}
}

type lexer struct {
	s string
	i int
}

func (p *lexer) done() bool { return p.i >= len(p.s) }
func (p *lexer) peek() byte { return p.s[p.i] }

func (p *lexer) skipOWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// element reads pairs up to the next ',' or the end, and returns the last
// for= value and how many for= pairs there were.
func (p *lexer) element() (node string, seen int, ok bool) {
	for {
		p.skipOWS()
		if p.done() || p.peek() == ',' {
			return node, seen, true
		}
		if p.peek() == ';' {
			p.i++
			continue
		}
		name := p.token()
		p.skipOWS()
		if name == "" || p.done() || p.peek() != '=' {
			return "", 0, false
		}
		p.i++
		p.skipOWS()
		val, ok := p.value()
		if !ok {
			return "", 0, false
		}
		if strings.EqualFold(name, "for") {
			node, seen = val, seen+1
		}
		p.skipOWS()
		if !p.done() && p.peek() != ';' && p.peek() != ',' {
			return "", 0, false
		}
	}
}

func (p *lexer) token() string {
	start := p.i
	for !p.done() && isTChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a quoted-string, or, leniently, an unquoted run of visible
// characters: proxies are known to leave "[v6]:port" unquoted.
func (p *lexer) value() (string, bool) {
	if p.done() {
		return "", false
	}
	if p.peek() != '"' {
		start := p.i
		for !p.done() {
			c := p.peek()
			if c <= ' ' || c >= 0x7f || c == ';' || c == ',' || c == '"' {
				break
			}
			p.i++
		}
		return p.s[start:p.i], p.i > start
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			return b.String(), true
		case c == '\\':
			if p.done() {
				return "", false
			}
			b.WriteByte(p.peek())
			p.i++
		case c < ' ' && c != '\t' || c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

// isTChar is RFC 9110's tchar.
func isTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode reads "1.2.3.4", "1.2.3.4:port", "[v6]", "[v6]:port" or a bare
// IPv6 address. "unknown", obfuscated names ("_hidden"), zones and anything
// else give the zero Addr.
func parseNode(s string) netip.Addr {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		inner, after, ok := strings.Cut(rest, "]")
		if !ok || !optionalPort(after) {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(inner)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	host, port, ok := strings.Cut(s, ":")
	if !ok || !validPort(port) {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// optionalPort accepts "" or ":" and a port.
func optionalPort(s string) bool {
	if s == "" {
		return true
	}
	port, ok := strings.CutPrefix(s, ":")
	return ok && validPort(port)
}

// validPort accepts a decimal port or an RFC 7239 obfuscated port ("_abc").
func validPort(port string) bool {
	if port == "" {
		return false
	}
	if port[0] == '_' {
		for i := 1; i < len(port); i++ {
			c := port[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return len(port) > 1
	}
	if len(port) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
