// Package netguard keeps the broker's back-channel calls to providers
// (discovery, JWKS, token, revocation, userinfo) from being turned against
// the broker's own network: server-side request forgery through a provider
// registered with an internal or cloud-metadata URL.
//
// There are two layers. CheckURL and CheckHost judge a URL when a provider
// is registered, so an operator gets a clear refusal early. The guarded
// Dialer and Transport judge the address actually being connected to, after
// DNS resolution and for every connection attempt, so a name that resolved
// to a public address at registration and to 127.0.0.1 later (DNS
// rebinding) is still refused. The dial-time check is the one that counts.
//
// Refused when private addresses are not allowed: unspecified, loopback,
// RFC 1918 and unique-local (fc00::/7), link-local (169.254.0.0/16,
// fe80::/10), shared address space (100.64.0.0/10), multicast, reserved,
// documentation and benchmarking ranges, IPv4-compatible, 6to4 and Teredo
// addresses, and NAT64 or IPv4-mapped forms of refused IPv4 addresses.
// Cloud metadata endpoints (169.254.169.254, fd00:ec2::254,
// 100.100.100.200 and friends) and every link-local address (169.254.0.0/16,
// fe80::/10) are refused even when private addresses are allowed, since no
// provider lives there and they hand out the host's cloud credentials.
//
// The package reads no environment: Transport does not use HTTP_PROXY,
// because a proxy would make the dial-time check see only the proxy.
package netguard
