// Package vault seals secrets at rest (provider tokens, PKCE verifiers,
// client secrets) with AES-256-GCM under a keyring of numbered keys.
//
// A sealed value is
//
//	version (1 byte, =1) | key id (1 byte) | nonce (12 bytes) | ciphertext+tag
//
// The version and key id are authenticated with the caller's additional data,
// so a value cannot be relabelled to another key or format. Callers pass as
// additional data whatever identifies the row and column the value belongs to
// (for example "token:<connection id>"), which stops a sealed value from being
// copied into another row. Rotation is adding a new primary key and keeping
// the old ones as older keys until every value has been re-sealed; KeyID tells
// which values still need it.
//
// The package does no I/O; it is pure and safe for concurrent use.
package vault
