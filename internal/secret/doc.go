// Package secret owns the String type used for every secret value the
// service holds in memory: client secrets, tokens, API keys, PKCE verifiers.
// Its formatting, logging and JSON forms are all redacted, so that a careless
// log line or error message cannot leak the value; the only way to read it is
// an explicit, greppable call to Reveal.
//
// One hole remains that no type can close: fmt prints unexported struct
// fields by reflection without calling their methods, so a String kept in an
// unexported field shows in full under %v of the enclosing struct. Types
// holding secrets should therefore implement their own String or LogValue,
// or keep the field exported.
package secret
