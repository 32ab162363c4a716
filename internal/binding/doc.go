// Package binding computes the additional data a provider's client secret
// is sealed with. From version 2 it holds a digest of every stored field
// that decides where the secret (and, with it, the users' refresh tokens)
// is sent: issuer, discovery switch, endpoints, the endpoints an operator
// confirmed, client id and authentication method. Someone who can write
// to the database but does not hold the encryption key can still edit
// those fields, but the secret then no longer opens, so the broker sends
// nothing anywhere instead of sending it to the new host.
//
// The package is pure: no I/O, no keys.
package binding
