// Package state mints and verifies the OAuth 2.0 `state` parameter the
// broker puts in an authorization URL and gets back on the callback.
//
// A state token is the unpadded base64url form of
//
//	version (1 byte, =1) | key id (1 byte)
//	| 4 × (length byte | bytes): connection, workspace, provider id, nonce
//	| issued-at, expires-at (big-endian int64 Unix seconds)
//	| HMAC-SHA256 tag (32 bytes) over everything before it
//
// The tag is keyed not with STATE_KEY itself but with a key derived from it
// for this purpose alone, so that other uses of the shared STATE_KEY (such as
// nonce binding) can never produce a valid state tag. The key id selects among
// a primary key and older keys, which lets the broker and gateway rotate
// STATE_KEY without failing consents already in flight.
//
// The payload is signed, not encrypted: it holds identifiers, never secrets.
// The package does no I/O and is safe for concurrent use.
package state
