// Package wwwauth parses WWW-Authenticate response headers (RFC 9110
// §11.6.1): the challenges a protected resource sends with a 401 or 403,
// such as a Bearer challenge carrying resource_metadata (RFC 9728 §5.1),
// scope and error (RFC 6750 §3). The header is untrusted input from a
// remote server: the parser never panics, bounds what it keeps and
// reports malformed input as an error rather than guessing.
package wwwauth
