package sdk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultWebhookTolerance is how far a webhook's timestamp may be from the
// receiver's clock, either way, when VerifyWebhook is given 0.
const DefaultWebhookTolerance = 5 * time.Minute

// Errors of VerifyWebhook. Test for them with errors.Is. A receiver should
// answer 400 or 401 to any of them and must not act on the body.
var (
	// ErrWebhookSecret: the secret is not "whsec_" + standard base64 (the
	// prefix may be left out) of a non-empty key.
	ErrWebhookSecret = errors.New("dromos: malformed webhook secret")
	// ErrWebhookHeaders: webhook-id, webhook-timestamp or
	// webhook-signature is missing or malformed.
	ErrWebhookHeaders = errors.New("dromos: missing or malformed webhook headers")
	// ErrWebhookTimestamp: webhook-timestamp is further from now than the
	// tolerance (a replayed, delayed or future-dated message).
	ErrWebhookTimestamp = errors.New("dromos: webhook timestamp outside tolerance")
	// ErrWebhookSignature: no v1 signature in webhook-signature matches
	// the secret (wrong secret, or id, timestamp or body changed).
	ErrWebhookSignature = errors.New("dromos: no matching webhook signature")
	// ErrWebhookPayload: the signature is valid but the body is not a
	// Dromos event.
	ErrWebhookPayload = errors.New("dromos: malformed webhook payload")
)

// Webhook event types. New types may be added; a receiver should ignore
// types it does not know rather than fail.
const (
	WebhookConnectionActive         = "connection.active"
	WebhookConnectionFailed         = "connection.failed"
	WebhookConnectionReauthRequired = "connection.reauth_required"
	WebhookConnectionRecovered      = "connection.recovered"
	WebhookConnectionDeleted        = "connection.deleted"
	WebhookConnectionScopesChanged  = "connection.scopes_changed"
)

// WebhookEvent is a verified webhook message.
type WebhookEvent struct {
	// ID is the webhook-id header: the same on every delivery attempt of
	// one event, so use it to drop duplicates.
	ID string
	// Type is one of the Webhook… constants (or a newer type).
	Type string
	// Timestamp is when the event happened.
	Timestamp time.Time
	// Data describes the connection after the event.
	Data WebhookConnection
}

// WebhookConnection is the data of a lifecycle event. It never carries a
// token, code or secret.
type WebhookConnection struct {
	ConnectionID string `json:"connection_id"`
	WorkspaceID  string `json:"workspace_id"` // with ClientName, the agent owning the connection
	ClientName   string `json:"client_name"`
	UserID       string `json:"user_id"`
	ProviderName string `json:"provider_name"`
	Status       string `json:"status"` // pending, active, failed, expired, revoked
	// Reason is the status reason code (invalid_grant, access_denied,
	// consent_expired, deleted…); empty when there is none.
	Reason    string    `json:"reason,omitempty"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// VerifyWebhook checks a webhook message Dromos sent (Standard Webhooks
// format) and returns its event. secret is the endpoint's "whsec_…"
// secret; headers and body are the request's, body exactly as received
// (read it whole, before any JSON decoding). tolerance bounds how far
// webhook-timestamp may be from the current time in either direction;
// 0 or less means DefaultWebhookTolerance.
//
// The message is accepted when any of the space-separated v1 signatures
// in webhook-signature matches; signatures are compared in constant time.
// While an endpoint's secret is being rotated, messages are signed with
// both secrets, so a receiver holding either one verifies them.
func VerifyWebhook(secret string, headers http.Header, body []byte, tolerance time.Duration) (*WebhookEvent, error) {
	return verifyWebhookAt(time.Now(), secret, headers, body, tolerance)
}

func verifyWebhookAt(now time.Time, secret string, headers http.Header, body []byte, tolerance time.Duration) (*WebhookEvent, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, ErrWebhookSecret
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	id := headers.Get("webhook-id")
	tsText := headers.Get("webhook-timestamp")
	sigs := headers.Get("webhook-signature")
	if id == "" || tsText == "" || sigs == "" {
		return nil, ErrWebhookHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: webhook-timestamp is not unix seconds", ErrWebhookHeaders)
	}
	// Compare in seconds so that no tolerance or timestamp can overflow
	// a time.Duration.
	skew := now.Unix() - ts
	limit := int64(tolerance / time.Second)
	if skew > limit || skew < -limit {
		return nil, ErrWebhookTimestamp
	}

	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + tsText + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	matched := false
	for _, sig := range strings.Fields(sigs) {
		version, enc, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue // another scheme (e.g. v1a) or garbage: not ours to judge
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			matched = true
		}
	}
	if !matched {
		return nil, ErrWebhookSignature
	}

	var raw struct {
		Type      string            `json:"type"`
		Timestamp time.Time         `json:"timestamp"`
		Data      WebhookConnection `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Type == "" {
		return nil, ErrWebhookPayload
	}
	return &WebhookEvent{ID: id, Type: raw.Type, Timestamp: raw.Timestamp, Data: raw.Data}, nil
}
