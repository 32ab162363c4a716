// Package idtoken owns OpenID Connect id_token verification: the signature
// against the provider's JWKS, and every claim check of OIDC Core §3.1.3.7
// the broker relies on (issuer, audience, azp, expiry, issued-at, nonce,
// subject).
//
// Signature math is go-jose's; this package decides which algorithms and
// keys are acceptable and keeps a per-URL cache of each provider's key set
// that follows key rotation without letting a stream of forged key ids turn
// into a stream of JWKS requests.
package idtoken
