// Package expectid owns an agent's expected identity: who should consent
// to a new connection (issue 20). An agent may name an e-mail address, an
// e-mail domain or a subject; the broker sends the e-mail as login_hint
// and, after verifying the id_token, refuses an account that does not
// match every name given (failed, identity_mismatch).
//
// It complements user confirmation (package confirm): this checks the
// provider account, that one the application's user.
//
// The package is pure: parsing, matching and the stored form.
package expectid
