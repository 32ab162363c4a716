// Package testenv starts the real peers end-to-end tests talk to: an
// independently written OpenID Provider (zitadel/oidc's example OP, served
// in-process on loopback) and a browser-like HTTP client that follows
// redirects and posts login forms. Only tests import it.
package testenv
