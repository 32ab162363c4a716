// Package webhook builds and signs the messages Dromos sends to webhook
// endpoints, in the Standard Webhooks format
// (https://www.standardwebhooks.com/).
//
// A message is a JSON event body ({type, timestamp, data}) plus three
// headers: webhook-id (unique per message, stable across retries so a
// receiver can drop duplicates), webhook-timestamp (unix seconds of the
// attempt) and webhook-signature ("v1," + base64 HMAC-SHA256 of
// "id.timestamp.body" under a whsec_ secret). When an endpoint has several
// valid secrets (during a rotation) the header carries one signature per
// secret, separated by spaces, and a receiver holding any one of them
// accepts the message.
//
// The package is a pure core: no storage, no network. Randomness is read
// from the io.Reader the caller passes (crypto/rand.Reader in production).
// Payloads carry identifiers, status and scopes only, never a token,
// authorization code, state or secret.
package webhook
