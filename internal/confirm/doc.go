// Package confirm owns user confirmation: the step that ties a new
// connection to the application's signed-in user, not only to whoever
// consented at the provider.
//
// The attack it closes: an attacker starts a connection for their own
// user id and sends the consent link to a victim, who consents in good
// faith and would attach their account to the attacker's connection. With
// confirmation required, a successful code exchange leaves the connection
// awaiting_confirmation (tokens sealed, never served) and sends the browser
// to the application's confirm_url with a one-time value. Two steps, in
// this order, make it active:
//
//  1. User: the application, which knows who is signed in, presents the
//     value and that user id. A different user id fails the connection
//     (user_mismatch); a right one issues a second one-time value and the
//     application sends the browser to the broker with it.
//  2. Browser: the broker checks that the browser carries the flow's
//     cookie, the one /auth/start bound and the callback checked. A value
//     copied into another browser fails the connection (browser_mismatch).
//
// Both values expire together, five minutes after the exchange
// (confirmation_expired); presenting the first value again after it was
// used fails the connection (confirmation_reused). A failed confirmation's
// tokens are revoked at the provider and erased by the caller. Values are
// random, only their digests are stored, and each step is one row-locked
// read-check-write (storage.UpdateConnection), so a value is used once
// even across replicas.
//
// A confirmation nobody completes lapses: Sweep, run by the broker's
// background worker, fails the lapsed ones (confirmation_expired) as a
// late value would, claiming each so replicas never fail one twice.
//
// Begin, User, Browser and Lapse are pure: they decide a transition. Run
// applies one in a single UpdateConnection, Sweep applies Lapse to every
// lapsed connection; revoking an erased grant at the provider, recording
// the failure and answering the browser are the caller's.
package confirm
