// Package revocation revokes grants at providers (RFC 7009) without giving
// up on the first failure.
//
// Deleting a connection removes it and its token row and, in the same
// transaction, writes a pending revocation: the tokens to revoke, sealed
// by the vault under the revocation's own id, an attempt count and the
// time of the next attempt. The broker that deleted the connection tries
// at once; when the provider cannot be reached or answers 5xx/429 (or
// rejects the client, which an operator may fix), any broker replica
// retries with exponential backoff until the retry period (default 72 h)
// runs out. A replica claims due rows under a lease (FOR UPDATE SKIP
// LOCKED on PostgreSQL, the single writer on SQLite), so one attempt runs
// at a time per grant, and a replica that dies mid-attempt only delays the
// next one until the lease ends.
//
// When the provider answers unsupported_token_type for the refresh token,
// the access token is revoked instead. Success and final failure of a
// revocation that had to be retried are audit events
// (revocation.succeeded, revocation.failed); every outcome is counted in
// dromos_revocations_total and the backlog is the dromos_revocations_pending
// gauge.
//
// Revoke is the one entry point for any other grant the broker decides not
// to keep (an exchange whose result is refused): it tries once and leaves
// a pending revocation behind when that fails.
package revocation
