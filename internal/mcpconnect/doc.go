// Package mcpconnect turns an MCP server URL into something the broker
// already knows how to connect: a provider whose endpoints, client and
// RFC 8707 resource come from MCP discovery (package mcp). Consent, code
// exchange, token storage, refresh and revocation then run exactly as for
// any provider.
//
// It owns the broker's OAuth clients at MCP authorization servers: one per
// authorization server (issuer), kept in storage with its credentials
// sealed, chosen in this order: a client the operator pre-registered for
// that issuer; the broker's Client ID Metadata Document, when the server
// advertises support and the broker publishes one; dynamic client
// registration (RFC 7591). A client is registered once and reused by every
// connection; nothing is stored when discovery or registration fails.
package mcpconnect
