// Package scopeallow owns a provider's scope allowlist (the profile's
// allowed_scopes): checking that its entries are well formed and telling
// which of the scopes an agent asks for it does not allow.
//
// An entry is a scope to match exactly, or a prefix followed by a single
// trailing '*' ("https://www.googleapis.com/auth/drive*" allows every scope
// starting with "https://www.googleapis.com/auth/drive"). An empty list
// allows every scope: profiles registered before allowlists existed keep
// working unchanged.
package scopeallow
