// Package mcp finds out how to authorize against a remote MCP server
// (the authorization part of the MCP specification, revisions 2025-03-26
// to 2025-11-25) and obtains an OAuth client there. It does not run the
// consent itself: the broker turns what Discover and Client return into an
// ordinary provider and connection.
//
// Discover probes the server with an unauthenticated initialize POST and
// reads the WWW-Authenticate challenge, fetches the protected-resource
// metadata (RFC 9728) from the URL the challenge names or from the
// well-known locations (path-specific first, then root), refuses metadata
// whose resource is not the server, and reads the authorization server's
// metadata (RFC 8414, then OpenID discovery, in the specification's
// path-insertion order). A server without protected-resource metadata is
// treated as a 2025-03-26 server: its origin is the authorization server,
// and when that has no metadata either, the default /authorize, /token and
// /register endpoints are used. An authorization server that does not
// advertise PKCE S256 is refused.
//
// Every URL is checked with the Guard before it is fetched, and the
// caller's HTTP client is expected to carry netguard's dial-time check in
// production. Redirects are never followed.
//
// Failures are *Error values with a stable code (mcp_…) the API returns
// as is.
package mcp
