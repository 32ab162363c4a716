// Package stepup adds scopes to a live connection.
//
// A step-up is a new consent for an active connection that asks for the
// connection's scopes plus the added ones. It is kept beside the connection
// (storage.StepUp), never on it: until the new consent completes, the
// connection stays active and keeps serving its current token. A completed
// step-up replaces the token set and the scopes in one transaction and
// keeps the connection id; a denied, failed or expired one leaves the
// connection exactly as it was.
//
// The package owns the rules: who may step up which connection, the scope
// union, the bound on repeated attempts, which state belongs to which
// attempt, and the transitions of an attempt. The broker's consent and
// callback code call it; the OAuth exchange itself stays there.
package stepup
