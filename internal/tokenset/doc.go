// Package tokenset owns what the broker keeps of a connection's tokens: the
// Set that is sealed in the vault, how its expiry is inferred from a token
// response, and the additional data that binds a ciphertext to its
// connection so that a row copied onto another connection does not open.
package tokenset
