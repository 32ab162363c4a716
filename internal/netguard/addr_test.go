package netguard_test

import (
	"net/netip"
	"testing"

	"github.com/dromos-dev/dromos/internal/netguard"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name         string
		addr         string
		strict       string // class with private destinations refused
		allowPrivate string // class with them allowed
	}{
		{"IPv4 unspecified", "0.0.0.0", "unspecified", ""},
		{"this network", "0.1.2.3", "unspecified", ""},
		{"IPv4 loopback", "127.0.0.1", "loopback", ""},
		{"IPv4 loopback /8", "127.200.0.9", "loopback", ""},
		{"RFC 1918 10/8", "10.1.2.3", "private", ""},
		{"RFC 1918 172.16/12", "172.31.255.255", "private", ""},
		{"RFC 1918 192.168/16", "192.168.0.1", "private", ""},
		{"CGNAT", "100.64.0.1", "shared (CGNAT)", ""},
		{"CGNAT upper end", "100.127.255.254", "shared (CGNAT)", ""},
		{"link-local", "169.254.1.1", "link-local", "link-local"},
		{"metadata", "169.254.169.254", "cloud metadata", "cloud metadata"},
		{"ECS metadata", "169.254.170.2", "cloud metadata", "cloud metadata"},
		{"Alibaba metadata", "100.100.100.200", "cloud metadata", "cloud metadata"},
		{"AWS IPv6 metadata", "fd00:ec2::254", "cloud metadata", "cloud metadata"},
		{"multicast", "224.0.0.251", "multicast", ""},
		{"broadcast", "255.255.255.255", "reserved", ""},
		{"benchmarking", "198.18.0.1", "reserved", ""},
		{"documentation", "192.0.2.10", "documentation", ""},
		{"IPv6 unspecified", "::", "unspecified", ""},
		{"IPv6 loopback", "::1", "loopback", ""},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1", "loopback", ""},
		{"IPv4-mapped private", "::ffff:10.0.0.1", "private", ""},
		{"IPv4-mapped metadata", "::ffff:169.254.169.254", "cloud metadata", "cloud metadata"},
		{"IPv4-compatible loopback", "::127.0.0.1", "IPv4-compatible", ""},
		{"unique local", "fd12:3456::1", "private", ""},
		{"unique local fc", "fc00::1", "private", ""},
		{"IPv6 link-local", "fe80::1", "link-local", "link-local"},
		{"IPv6 link-local with zone", "fe80::1%eth0", "link-local", "link-local"},
		{"IPv4-mapped link-local", "::ffff:169.254.3.4", "link-local", "link-local"},
		{"NAT64 of link-local", "64:ff9b::a9fe:102", "link-local", "link-local"},
		{"site-local", "fec0::1", "site-local", ""},
		{"IPv6 multicast", "ff02::1", "multicast", ""},
		{"NAT64 of loopback", "64:ff9b::7f00:1", "loopback", ""},
		{"NAT64 of metadata", "64:ff9b::a9fe:a9fe", "cloud metadata", "cloud metadata"},
		{"local-use NAT64", "64:ff9b:1::1", "reserved", ""},
		{"6to4", "2002:7f00:1::1", "6to4", ""},
		{"Teredo", "2001:0:4136:e378::1", "reserved", ""},
		{"IPv6 documentation", "2001:db8::1", "documentation", ""},
		{"public IPv4", "8.8.8.8", "", ""},
		{"public IPv4 next to CGNAT", "100.128.0.1", "", ""},
		{"public IPv4 next to 172.16/12", "172.32.0.1", "", ""},
		{"public IPv6", "2606:4700:4700::1111", "", ""},
		{"public IPv6 Google", "2001:4860:4860::8888", "", ""},
		{"NAT64 of a public address", "64:ff9b::808:808", "", ""},
		{"IPv4-mapped public", "::ffff:8.8.8.8", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			if got := netguard.Classify(a, false); got != tc.strict {
				t.Errorf("Classify(%s, false) = %q, want %q", tc.addr, got, tc.strict)
			}
			if got := netguard.Classify(a, true); got != tc.allowPrivate {
				t.Errorf("Classify(%s, true) = %q, want %q", tc.addr, got, tc.allowPrivate)
			}
		})
	}
	if got := netguard.Classify(netip.Addr{}, true); got == "" {
		t.Error("the zero Addr is allowed")
	}
}
