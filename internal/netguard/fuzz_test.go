package netguard_test

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/dromos-dev/dromos/internal/netguard"
)

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://accounts.google.com/.well-known/openid-configuration",
		"https://[2606:4700::1]:8443/x",
		"http://localhost:9000",
		"https://user@host/",
		"https://2130706433/",
		"https://[fe80::1%25eth0]/",
		"https:host",
		"//host",
		"",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowHTTP bool) {
		if netguard.CheckURL(raw, allowHTTP) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q that does not parse: %v", raw, err)
		}
		if u.User != nil || u.Hostname() == "" || u.Fragment != "" {
			t.Fatalf("accepted %q: user=%v host=%q", raw, u.User, u.Hostname())
		}
		if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
			t.Fatalf("accepted scheme %q (allowHTTP=%v)", u.Scheme, allowHTTP)
		}
	})
}

// FuzzClassify checks that no spelling of an IPv4 address as IPv6 (mapped
// or NAT64) is judged more leniently than the address itself.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "169.254.169.254", "10.0.0.1", "8.8.8.8", "100.64.0.1", "0.0.0.0"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		v4 := netip.AddrFrom4([4]byte(b[:4]))
		mapped := netip.AddrFrom16(v4.As16())
		nat := [16]byte{0, 0x64, 0xff, 0x9b, 10: 0, 11: 0}
		copy(nat[12:], b[:4])
		for _, allowPrivate := range []bool{false, true} {
			want := netguard.Classify(v4, allowPrivate)
			if got := netguard.Classify(mapped, allowPrivate); got != want {
				t.Fatalf("%s: mapped %q, plain %q", v4, got, want)
			}
			if got := netguard.Classify(netip.AddrFrom16(nat), allowPrivate); got != want {
				t.Fatalf("%s: NAT64 %q, plain %q", v4, got, want)
			}
		}
	})
}
