// Package clientip decides which address a request came from when the
// broker or gateway sits behind reverse proxies (TRUSTED_PROXIES).
//
// Only the TCP peer is a fact; every header is a claim. A claim is believed
// only as far as it was written by a proxy the operator trusts: the chain in
// X-Forwarded-For, or in the for= parameters of RFC 7239 Forwarded, is read
// from the right (the end the nearest proxy appended to), trusted proxies
// are skipped, and the first untrusted hop is the client. Whatever a client
// put further left is never reached. X-Real-IP, True-Client-IP and
// CF-Connecting-IP are never read: a proxy that sets them cannot be told
// apart from a client that forges them.
//
// A proxy that writes one of the two chain headers cannot stop a client from
// sending the other, so when both are present and name different clients
// the request is attributed to the peer. The same happens when the part of a
// chain that must be read is malformed, names "unknown" or an obfuscated
// node. In those cases the answer is the address of a trusted proxy, so the
// result suits rate limiting, logs and audit; it must not by itself grant
// access to an address range that contains the trusted proxies.
//
// The package does no I/O and is safe for concurrent use.
package clientip
