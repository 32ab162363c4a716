// Package state mints and verifies the OAuth 2.0 `state` parameter the
// broker puts in an authorization URL and gets back on the callback.
//
// A state token is the unpadded base64url form of
//
//	version (1 byte, =2) | key id (1 byte)
//	| 4 × (length byte | bytes): connection, workspace, provider id, nonce
//	| issued-at, expires-at (big-endian int64 Unix seconds)
//	| Ed25519 signature (64 bytes) over "dromos state token v2\x00" and
//	  everything before it
//
// The signing key's seed is derived from STATE_KEY (HMAC-SHA256 with a
// label used for nothing else), so only the broker, which holds STATE_KEY,
// can sign. A Verifier holds public keys only: the gateway reads the
// connection a state names without being able to mint one. The key id
// selects among a primary key and older keys, which lets the broker and
// gateway rotate keys without failing consents already in flight.
//
// Version 1 tokens (HMAC-SHA256, which every holder of STATE_KEY could
// mint) are refused: a consent started before the upgrade fails at the
// callback and the agent starts it again.
//
// The payload is signed, not encrypted: it holds identifiers, never secrets.
// The package does no I/O and is safe for concurrent use.
package state
