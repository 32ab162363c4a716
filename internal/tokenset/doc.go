// Package tokenset owns what the broker keeps of a connection's tokens: the
// Set that is sealed in the vault and how its expiry is inferred from a
// token response. It also names the additional authenticated data of every
// ciphertext the broker stores (token sets, PKCE verifiers, provider client
// secrets), which binds each to its row: a ciphertext copied onto another
// row does not open.
package tokenset
