package clientip

import (
	"net/http"
	"net/netip"
)

// Resolver finds a request's client address.
type Resolver struct {
	// TrustedProxies are the proxies whose forwarding headers are believed.
	// Each must append the address it received the request from to
	// X-Forwarded-For or Forwarded; trusting one that passes the client's
	// headers through unchanged lets clients choose their address. IPv4
	// ranges are given in IPv4 form; IPv4-mapped IPv6 addresses are
	// compared as IPv4.
	TrustedProxies []netip.Prefix
}

// ClientIP returns the client address of req: the TCP peer unless the peer
// is a trusted proxy, in which case the rightmost untrusted hop of the
// forwarding chain (see the package documentation for the cases that fall
// back to the peer). The result is unmapped (IPv4-mapped IPv6 becomes
// IPv4) and carries no zone. It is the zero Addr only when req.RemoteAddr
// is not an IP address, as with Unix sockets.
func (r Resolver) ClientIP(req *http.Request) netip.Addr {
	peer, ok := parsePeer(req.RemoteAddr)
	if !ok || !r.trusted(peer) {
		return peer
	}
	xffLines := req.Header.Values("X-Forwarded-For")
	fwdLines := req.Header.Values("Forwarded")
	var fromXFF, fromFwd netip.Addr
	if len(xffLines) > 0 {
		if fromXFF, ok = r.walk(parseXFF(xffLines)); !ok {
			return peer
		}
	}
	if len(fwdLines) > 0 {
		if fromFwd, ok = r.walk(parseForwarded(fwdLines)); !ok {
			return peer
		}
	}
	switch {
	case fromXFF.IsValid() && fromFwd.IsValid() && fromXFF != fromFwd:
		return peer
	case fromXFF.IsValid():
		return fromXFF
	case fromFwd.IsValid():
		return fromFwd
	default:
		return peer
	}
}

func (r Resolver) trusted(a netip.Addr) bool {
	for _, p := range r.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walk returns the rightmost untrusted hop, or the leftmost hop when every
// hop is trusted (the client is then one of the operator's own machines).
// An unusable hop reached on the way means the chain cannot be read.
func (r Resolver) walk(hops []netip.Addr) (netip.Addr, bool) {
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		if !h.IsValid() {
			return netip.Addr{}, false
		}
		if !r.trusted(h) {
			return h, true
		}
	}
	if len(hops) == 0 {
		return netip.Addr{}, false
	}
	return hops[0], true
}

func parsePeer(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.WithZone("").Unmap(), true
	}
	return netip.Addr{}, false
}
