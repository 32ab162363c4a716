// Package exchange owns the back channel to a provider's token endpoint:
// exchanging an authorization code, refreshing, and revoking (RFC 6749,
// RFC 7009), with client authentication by client_secret_basic,
// client_secret_post, auto-detection between them, or none.
//
// ParseResponse is the one place where the quirks of real token responses
// are handled (form-encoded bodies, expires_in as a string, errors inside an
// HTTP 200…), so that no other package has to know about them. The few
// quirks that would break a strict parse (Slack's token_type "bot", a token
// nested in authed_user) are opt-in switches: ParseOptions, set through
// Endpoint.AcceptAnyTokenType and Endpoint.TokenMember.
//
// The Client never follows redirects, bounds every body it reads, and never
// puts a token, code, verifier, secret or raw response body into a log line
// or an error message. Classify maps any error it returns onto the few
// classes a caller acts on: retry later, re-consent, fix the client
// registration, or give up on a broken provider.
package exchange
