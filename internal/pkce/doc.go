// Package pkce implements the client side of Proof Key for Code Exchange
// (RFC 7636) with the S256 method only: minting a code verifier, deriving its
// challenge, and checking a verifier's syntax. The plain method is left out on
// purpose; it protects nothing once the authorization request is observed.
package pkce
