// Package authreq builds the URL a browser is sent to for consent: the
// authorization request's parameters in the URL, or, when the provider
// requires pushed authorization requests (RFC 9126) or its profile asks for
// them, the parameters pushed to the provider over the back channel first,
// with only client_id and the request_uri it answers in the URL. Pushing
// keeps state, the PKCE challenge and the scopes out of the front channel
// and lets the provider authenticate the client before the user sees a
// consent screen.
package authreq
