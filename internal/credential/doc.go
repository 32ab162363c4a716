// Package credential owns the credentials that are not OAuth grants: API
// keys and HTTP basic user/password pairs an agent or its user hands to
// the broker instead of a consent.
//
// It defines what a provider profile says about them (Spec: how the key
// is sent, Injection; how the broker checks it once, Verification), parses
// what an agent submits (Parse), checks it against the provider
// (Verify) and describes it to the agent that owns it (Credential, the
// value sealed in the vault and returned by that agent's token read).
//
// The package does no storage and no sealing: the broker seals a
// Credential with the connection's token additional data (package
// tokenset), exactly like an OAuth token.
package credential
