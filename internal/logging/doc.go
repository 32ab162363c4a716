// Package logging builds the structured JSON logger every Dromos process
// uses. Redaction lives here, in the handler, rather than at call sites: an
// attribute whose key names a secret (access_token, code_verifier,
// client_secret, authorization, …) is replaced before it is written, and the
// request id carried by the context is added to every record logged with it.
package logging
