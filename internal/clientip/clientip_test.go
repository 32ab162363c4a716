package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/dromos-dev/dromos/internal/clientip"
)

// Trusted: the load balancers 10.0.0.0/8 and 2001:db8:ffff::/48.
var resolver = clientip.Resolver{TrustedProxies: []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
}}

type header struct{ name, value string }

func request(remote string, hs ...header) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for _, h := range hs {
		r.Header.Add(h.name, h.value)
	}
	return r
}

func xff(v string) header { return header{"X-Forwarded-For", v} }
func fwd(v string) header { return header{"Forwarded", v} }

func TestClientIP(t *testing.T) {
	cases := []struct {
		name    string
		remote  string
		headers []header
		want    string
	}{
		// A client talking to us directly cannot claim another address.
		{"untrusted peer, no headers", "198.51.100.7:5555", nil, "198.51.100.7"},
		{"untrusted peer forges XFF", "198.51.100.7:5555", []header{xff("203.0.113.1")}, "198.51.100.7"},
		{"untrusted peer forges Forwarded", "198.51.100.7:5555", []header{fwd("for=203.0.113.1")}, "198.51.100.7"},
		{"untrusted peer forges X-Real-IP", "198.51.100.7:5555", []header{{"X-Real-IP", "203.0.113.1"}}, "198.51.100.7"},
		{"untrusted peer forges True-Client-IP", "198.51.100.7:5555", []header{{"True-Client-IP", "203.0.113.1"}}, "198.51.100.7"},
		{"untrusted peer forges CF-Connecting-IP", "198.51.100.7:5555", []header{{"CF-Connecting-IP", "203.0.113.1"}}, "198.51.100.7"},
		{"untrusted peer claims a trusted address", "198.51.100.7:5555", []header{xff("10.0.0.1")}, "198.51.100.7"},

		// Behind trusted proxies.
		{"trusted peer, no headers", "10.0.0.2:80", nil, "10.0.0.2"},
		{"trusted peer, only X-Real-IP", "10.0.0.2:80", []header{{"X-Real-IP", "203.0.113.1"}}, "10.0.0.2"},
		{"trusted peer, only True-Client-IP", "10.0.0.2:80", []header{{"True-Client-IP", "203.0.113.1"}, {"CF-Connecting-IP", "203.0.113.2"}}, "10.0.0.2"},
		{"one proxy", "10.0.0.2:80", []header{xff("198.51.100.7")}, "198.51.100.7"},
		{"three trusted proxies", "10.0.0.2:80", []header{xff("198.51.100.7, 10.3.3.3, 10.2.2.2")}, "198.51.100.7"},
		{"client forged the left part", "10.0.0.2:80", []header{xff("1.1.1.1, 10.9.9.9, 198.51.100.7, 10.2.2.2")}, "198.51.100.7"},
		{"X-Real-IP ignored beside XFF", "10.0.0.2:80", []header{xff("198.51.100.7"), {"X-Real-IP", "203.0.113.1"}}, "198.51.100.7"},
		{"XFF split over lines", "10.0.0.2:80", []header{xff("1.1.1.1"), xff("198.51.100.7, 10.2.2.2")}, "198.51.100.7"},
		{"XFF empty elements skipped", "10.0.0.2:80", []header{xff(" , 198.51.100.7,,")}, "198.51.100.7"},
		{"XFF with port", "10.0.0.2:80", []header{xff("198.51.100.7:4711")}, "198.51.100.7"},
		{"XFF bare IPv6", "10.0.0.2:80", []header{xff("2001:db8:1::7")}, "2001:db8:1::7"},
		{"XFF bracketed IPv6 with port", "10.0.0.2:80", []header{xff("[2001:db8:1::7]:4711")}, "2001:db8:1::7"},
		{"XFF IPv4-mapped", "10.0.0.2:80", []header{xff("::ffff:198.51.100.7")}, "198.51.100.7"},
		{"XFF mapped trusted hop skipped", "10.0.0.2:80", []header{xff("198.51.100.7, ::ffff:10.1.1.1")}, "198.51.100.7"},
		{"all hops trusted: leftmost", "10.0.0.2:80", []header{xff("10.5.5.5, 10.4.4.4")}, "10.5.5.5"},
		{"IPv6 trusted peer", "[2001:db8:ffff::1]:443", []header{xff("198.51.100.7")}, "198.51.100.7"},
		{"IPv4-mapped trusted peer", "[::ffff:10.0.0.2]:80", []header{xff("198.51.100.7")}, "198.51.100.7"},
		{"peer with zone", "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"peer without port", "10.0.0.2", []header{xff("198.51.100.7")}, "198.51.100.7"},

		// Garbage in the part that must be read: the peer.
		{"XFF garbage", "10.0.0.2:80", []header{xff("not-an-ip")}, "10.0.0.2"},
		{"XFF garbage after a trusted hop", "10.0.0.2:80", []header{xff("198.51.100.7, bogus, 10.2.2.2")}, "10.0.0.2"},
		{"XFF unknown", "10.0.0.2:80", []header{xff("unknown")}, "10.0.0.2"},
		{"XFF zone", "10.0.0.2:80", []header{xff("fe80::1%eth0")}, "10.0.0.2"},
		{"XFF only empty elements", "10.0.0.2:80", []header{xff(" , ,")}, "10.0.0.2"},
		{"XFF port out of range", "10.0.0.2:80", []header{xff("198.51.100.7:65536")}, "10.0.0.2"},
		{"XFF hostname", "10.0.0.2:80", []header{xff("evil.example")}, "10.0.0.2"},
		// Garbage to the left of the answer cannot hide it.
		{"XFF garbage left of the client", "10.0.0.2:80", []header{xff("<script>, 198.51.100.7")}, "198.51.100.7"},

		// RFC 7239 Forwarded.
		{"Forwarded simple", "10.0.0.2:80", []header{fwd("for=198.51.100.7")}, "198.51.100.7"},
		{"Forwarded with other pairs", "10.0.0.2:80", []header{fwd("for=198.51.100.7;proto=https;by=10.0.0.2;host=broker.example")}, "198.51.100.7"},
		{"Forwarded name case", "10.0.0.2:80", []header{fwd("For=198.51.100.7")}, "198.51.100.7"},
		{"Forwarded quoted IPv4 with port", "10.0.0.2:80", []header{fwd(`for="198.51.100.7:4711"`)}, "198.51.100.7"},
		{"Forwarded IPv6 with brackets and port", "10.0.0.2:80", []header{fwd(`for="[2001:db8:cafe::17]:4711"`)}, "2001:db8:cafe::17"},
		{"Forwarded IPv6 with brackets", "10.0.0.2:80", []header{fwd(`for="[2001:db8:cafe::17]"`)}, "2001:db8:cafe::17"},
		{"Forwarded IPv6 unquoted", "10.0.0.2:80", []header{fwd(`for=[2001:db8:cafe::17]:4711`)}, "2001:db8:cafe::17"},
		{"Forwarded obfuscated port", "10.0.0.2:80", []header{fwd(`for="198.51.100.7:_abc"`)}, "198.51.100.7"},
		{"Forwarded escaped quoted-string", "10.0.0.2:80", []header{fwd(`for="198.51.100.\7"`)}, "198.51.100.7"},
		{"Forwarded chain", "10.0.0.2:80", []header{fwd(`for=1.1.1.1, for=198.51.100.7;proto=https, for="[2001:db8:ffff::9]"`)}, "198.51.100.7"},
		{"Forwarded chain over lines", "10.0.0.2:80", []header{fwd(`for=1.1.1.1`), fwd(`for=198.51.100.7`), fwd(`for=10.2.2.2`)}, "198.51.100.7"},
		{"Forwarded comma inside quotes", "10.0.0.2:80", []header{fwd(`for=198.51.100.7;host="a,b"`)}, "198.51.100.7"},
		{"Forwarded unknown", "10.0.0.2:80", []header{fwd("for=unknown")}, "10.0.0.2"},
		{"Forwarded obfuscated node", "10.0.0.2:80", []header{fwd("for=_gazonk")}, "10.0.0.2"},
		{"Forwarded element without for", "10.0.0.2:80", []header{fwd("proto=https")}, "10.0.0.2"},
		{"Forwarded two for= in one element", "10.0.0.2:80", []header{fwd("for=198.51.100.7;for=203.0.113.1")}, "10.0.0.2"},
		{"Forwarded unterminated quote", "10.0.0.2:80", []header{fwd(`for="198.51.100.7`)}, "10.0.0.2"},
		{"Forwarded missing =", "10.0.0.2:80", []header{fwd("for 198.51.100.7")}, "10.0.0.2"},
		{"Forwarded junk after value", "10.0.0.2:80", []header{fwd(`for="198.51.100.7"x`)}, "10.0.0.2"},
		{"Forwarded IPv6 missing bracket", "10.0.0.2:80", []header{fwd(`for="[2001:db8::1"`)}, "10.0.0.2"},
		{"Forwarded IPv4 in brackets", "10.0.0.2:80", []header{fwd(`for="[198.51.100.7]"`)}, "10.0.0.2"},
		// A forged line before the proxy's own line cannot hide the client.
		{"Forwarded broken line left of the client", "10.0.0.2:80", []header{fwd(`for="1.1.1.1`), fwd("for=198.51.100.7")}, "198.51.100.7"},

		// Both chains: they must agree.
		{"both agree", "10.0.0.2:80", []header{xff("198.51.100.7"), fwd("for=198.51.100.7")}, "198.51.100.7"},
		{"client forges Forwarded beside the proxy's XFF", "10.0.0.2:80", []header{fwd("for=203.0.113.1"), xff("203.0.113.1, 198.51.100.7")}, "10.0.0.2"},
		{"client forges XFF beside the proxy's Forwarded", "10.0.0.2:80", []header{xff("203.0.113.1"), fwd("for=198.51.100.7")}, "10.0.0.2"},
		{"one chain broken", "10.0.0.2:80", []header{xff("198.51.100.7"), fwd("for=unknown")}, "10.0.0.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := resolver.ClientIP(request(tc.remote, tc.headers...))
			if want := netip.MustParseAddr(tc.want); got != want {
				t.Fatalf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPUnparsablePeer(t *testing.T) {
	for _, remote := range []string{"", "@", "/run/dromos.sock", "pipe", "[::1]"} {
		got := resolver.ClientIP(request(remote, xff("198.51.100.7")))
		if got.IsValid() {
			t.Errorf("RemoteAddr %q: got %v, want the zero Addr", remote, got)
		}
	}
}

// With no trusted proxies configured nothing but the peer counts, whatever
// the headers say, including a claim to be a loopback or private address.
func TestNoTrustedProxies(t *testing.T) {
	var r clientip.Resolver
	got := r.ClientIP(request("127.0.0.1:9999", xff("10.1.1.1"), fwd("for=10.1.1.1"), header{"X-Real-IP", "10.1.1.1"}))
	if got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("got %v", got)
	}
}
