// Package registry keeps the providers a broker connects to: their
// profiles, their client secrets sealed in the vault, and the endpoints
// resolved from static fields and OIDC discovery. It serves the broker's
// /providers and /catalog routes, and the broker's consent, callback and
// refresh code look providers up through it.
package registry
