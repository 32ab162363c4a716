// Package broker is the broker's HTTP API: consent
// (PKCE S256, signed state, nonce), the public callback that exchanges the
// code and stores the sealed tokens, and token reads. It owns every secret
// Dromos holds; the gateway only ever talks to it over HTTP. Keeping tokens
// fresh is internal/refresh's job, which reaches providers through the
// broker (grants.go); registered providers, their sealed client secrets and
// the /providers and /catalog routes are internal/registry's; the sealed
// token set is internal/tokenset.
package broker
