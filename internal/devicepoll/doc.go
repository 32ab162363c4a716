// Package devicepoll runs the polling half of the device authorization
// grant (RFC 8628): the broker has asked the provider for a device and
// user code, the person approves on another device, and the broker polls
// the token endpoint until the provider answers with a token or a refusal.
//
// The device code is a bearer secret for the grant: it is sealed by the
// vault (additional data bound to the connection id) into a row of its
// own (storage.DeviceGrant) and opened only to be sent to the provider's
// token endpoint. It is never returned, logged or audited.
//
// Any broker replica may poll. A pass claims the due grants under a lease
// (FOR UPDATE SKIP LOCKED on PostgreSQL, the single writer on SQLite), so
// one replica polls a grant at a time, and schedules the next poll one
// interval after the provider's answer arrived: the provider never sees
// two polls closer than its interval, however many replicas run.
// authorization_pending keeps the schedule; slow_down adds 5 s to the
// interval for good (RFC 8628 §3.5) and the longer interval is stored, so
// the next replica to claim the grant keeps it; a poll that fails on the
// way (timeout, network error, 429, 5xx) doubles the stored interval, up
// to MaxBackoffInterval (§3.5's exponential back-off); access_denied and
// expired_token, or the code's expires_in running out, end the grant and
// the broker fails the connection with that reason. A token is handed to
// the broker (Deps.Granted), which verifies and stores it exactly like an
// authorization code's.
package devicepoll
