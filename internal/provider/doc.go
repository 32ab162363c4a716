// Package provider owns the provider profile: the JSON shape operators
// register, its normalisation and validation, the named quirks a profile
// switches on, and the building of authorization URLs from it. It does no
// I/O; the broker stores profiles and resolves discovery elsewhere.
package provider
