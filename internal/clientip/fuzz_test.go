package clientip_test

import (
	"net/netip"
	"testing"
)

// FuzzHeaders feeds client-controlled X-Forwarded-For and Forwarded values
// through a trusted proxy. Besides never panicking, the answer must never be
// an address the client chose: the proxy appended the client's real
// address, so the result is that address or, when the chain cannot be
// read, the proxy itself.
func FuzzHeaders(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{"1.1.1.1", ""},
		{"1.1.1.1, 10.0.0.9", "for=1.1.1.1"},
		{"[2001:db8::1]:80, ::ffff:10.0.0.1", `for="[2001:db8::1]:4711";proto=https, for=unknown`},
		{"unknown,,", `for=_hidden;by="a\"b"`},
		{"fe80::1%eth0", `for="198.51.100.7`},
		{"1.2.3.4:99999", `For=[::1], , for="1.2.3.4:_x"`},
		{",", ";;,;"},
		{"\t", `for="\`},
	} {
		f.Add(s[0], s[1])
	}
	const peer = "10.0.0.2:80"
	peerAddr := netip.MustParseAddr("10.0.0.2")
	client := netip.MustParseAddr("198.51.100.7")
	f.Fuzz(func(t *testing.T, forgedXFF, forgedFwd string) {
		// The client sent both headers; whatever parses, garbage in them
		// may at worst make the request count as the proxy's.
		got := resolver.ClientIP(request(peer, xff(forgedXFF), fwd(forgedFwd)))
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientIP = %v: not a plain address", got)
		}

		// The proxy appends to X-Forwarded-For; the client sent only that.
		got = resolver.ClientIP(request(peer, xff(forgedXFF+", 198.51.100.7")))
		if got != client {
			t.Fatalf("XFF %q + proxy hop: got %v, want %v", forgedXFF, got, client)
		}

		// The proxy adds its own Forwarded line after the client's.
		got = resolver.ClientIP(request(peer, fwd(forgedFwd), fwd("for=198.51.100.7")))
		if got != client {
			t.Fatalf("Forwarded %q + proxy line: got %v, want %v", forgedFwd, got, client)
		}

		// The proxy appends to the client's Forwarded line (a forged open
		// quote can swallow the hop) while the client also forges XFF.
		got = resolver.ClientIP(request(peer, xff(forgedXFF), fwd(forgedFwd+", for=198.51.100.7")))
		if got != client && got != peerAddr {
			t.Fatalf("XFF %q, Forwarded %q + proxy hop: got %v, a client-chosen address", forgedXFF, forgedFwd, got)
		}
	})
}
