// Package discovery owns OpenID Connect and OAuth 2.0 authorization server
// metadata: fetching an issuer's discovery document (OpenID Connect Discovery
// 1.0, falling back to RFC 8414), checking that it really belongs to the
// configured issuer, and caching it so that a provider outage never turns a
// good copy into an error.
//
// The broker calls [Cache.Fetch] when an operator registers a provider, so a
// misconfigured issuer is reported at once, and [Cache.Get] on every flow that
// needs an endpoint.
package discovery
