package netguard

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrBlocked is wrapped by every refusal of a destination address.
var ErrBlocked = errors.New("netguard: destination not allowed")

// BlockedError names the refused address and why. Addresses are not
// secrets; they tell an operator which registration or record is wrong.
type BlockedError struct {
	Host  string     // the name that resolved to Addr, if any
	Addr  netip.Addr // the refused address
	Class string     // e.g. "loopback", "private", "cloud metadata"
}

func (e *BlockedError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("netguard: %s resolves to %s, a %s address", e.Host, e.Addr, e.Class)
	}
	return fmt.Sprintf("netguard: %s is a %s address", e.Addr, e.Class)
}

func (e *BlockedError) Unwrap() error { return ErrBlocked }

type rangeClass struct {
	prefix netip.Prefix
	class  string
}

func ranges(class string, prefixes ...string) []rangeClass {
	out := make([]rangeClass, len(prefixes))
	for i, p := range prefixes {
		out[i] = rangeClass{netip.MustParsePrefix(p), class}
	}
	return out
}

// metadata are cloud instance-metadata and host-agent endpoints, and
// always (below) adds the link-local ranges they live in: both are refused
// even when private destinations are allowed. No provider is reached at a
// link-local address, and a development broker on a cloud host would
// otherwise hand out the host's credentials.
var metadata = ranges("cloud metadata",
	"169.254.169.254/32", // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack
	"169.254.170.2/32",   // AWS ECS task metadata and credentials
	"fd00:ec2::254/128",  // AWS IMDS over IPv6
	"100.100.100.200/32", // Alibaba Cloud
	"168.63.129.16/32",   // Azure WireServer (a public-range address)
)

var always = concat(metadata, ranges("link-local", "169.254.0.0/16", "fe80::/10"))

// specialV4 are the IPv4 ranges that are not ordinary public unicast
// (RFC 6890 and successors).
var specialV4 = concat(
	ranges("unspecified", "0.0.0.0/8"),
	ranges("loopback", "127.0.0.0/8"),
	ranges("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
	ranges("shared (CGNAT)", "100.64.0.0/10"),
	ranges("link-local", "169.254.0.0/16"),
	ranges("reserved", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4"),
	ranges("documentation", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
	ranges("multicast", "224.0.0.0/4"),
)

var specialV6 = concat(
	ranges("unspecified", "::/128"),
	ranges("loopback", "::1/128"),
	ranges("IPv4-compatible", "::/96"),
	ranges("private", "fc00::/7"),
	ranges("link-local", "fe80::/10"),
	ranges("site-local", "fec0::/10"),
	ranges("multicast", "ff00::/8"),
	ranges("reserved", "100::/64", "2001::/23", "64:ff9b:1::/48"),
	ranges("6to4", "2002::/16"),
	ranges("documentation", "2001:db8::/32", "3fff::/20"),
)

// nat64 is the well-known NAT64 prefix: the last 32 bits are an IPv4
// address, judged as such, so IPv6-only hosts can still reach public IPv4
// providers through DNS64 but not private ones.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

func concat(lists ...[]rangeClass) []rangeClass {
	var out []rangeClass
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Classify returns why a is refused as a destination, or "" if it is
// allowed. allowPrivate lifts every refusal except cloud metadata and
// link-local addresses.
func Classify(a netip.Addr, allowPrivate bool) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("").Unmap()
	var embedded netip.Addr
	if nat64.Contains(a) {
		b := a.As16()
		embedded = netip.AddrFrom4([4]byte(b[12:]))
	}
	if c := lookup(always, a); c != "" {
		return c
	}
	if c := lookup(always, embedded); c != "" {
		return c
	}
	switch {
	case allowPrivate:
		return ""
	case a.Is4():
		return lookup(specialV4, a)
	case embedded.IsValid():
		return lookup(specialV4, embedded)
	default:
		return lookup(specialV6, a)
	}
}

func lookup(rs []rangeClass, a netip.Addr) string {
	for _, r := range rs {
		if r.prefix.Contains(a) {
			return r.class
		}
	}
	return ""
}
