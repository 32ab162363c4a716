package webhook_test

import (
	"crypto/rand"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/webhook"
	"github.com/dromos-dev/dromos/sdk"
)

// The SDK verifies webhooks with its own code (it imports nothing
// internal); this test holds it to what the signer produces.
func TestSDKVerifiesSignedMessages(t *testing.T) {
	oldSecret, err := webhook.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	newSecret, err := webhook.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	outsider, err := webhook.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	created := now.Add(-time.Hour).Truncate(time.Second)
	ev := webhook.Event{
		Type:      webhook.ConnectionReauthRequired,
		Timestamp: now,
		Data: webhook.Connection{
			ConnectionID: "c-1", WorkspaceID: "default", ClientName: "agent-a", UserID: "Zoë 🙂",
			ProviderName: "google", Status: "expired", Reason: "invalid_grant",
			Scopes: []string{"openid", "email"}, CreatedAt: created,
		},
	}
	body, err := webhook.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	id, err := webhook.NewMessageID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, at time.Time) http.Header {
		t.Helper()
		h, err := webhook.Sign(id, at, body, oldSecret, newSecret)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	for _, s := range []webhook.Secret{oldSecret, newSecret} {
		got, err := sdk.VerifyWebhook(s.Reveal(), sign(t, now), body, 0)
		if err != nil {
			t.Fatalf("VerifyWebhook: %v", err)
		}
		if got.ID != id || got.Type != sdk.WebhookConnectionReauthRequired || !got.Timestamp.Equal(now) {
			t.Fatalf("event %+v", got)
		}
		d := got.Data
		if d.ConnectionID != "c-1" || d.WorkspaceID != "default" || d.ClientName != "agent-a" || d.UserID != "Zoë 🙂" ||
			d.ProviderName != "google" || d.Status != "expired" || d.Reason != "invalid_grant" ||
			len(d.Scopes) != 2 || d.Scopes[1] != "email" || !d.CreatedAt.Equal(created) || !d.UpdatedAt.IsZero() {
			t.Fatalf("data %+v", d)
		}
	}

	// The SDK's type constants name the same events as the signer's.
	sdkTypes := []string{sdk.WebhookConnectionActive, sdk.WebhookConnectionFailed, sdk.WebhookConnectionReauthRequired,
		sdk.WebhookConnectionRecovered, sdk.WebhookConnectionDeleted, sdk.WebhookConnectionScopesChanged}
	for i, typ := range webhook.EventTypes() {
		if sdkTypes[i] != string(typ) {
			t.Errorf("sdk type %q, signer type %q", sdkTypes[i], typ)
		}
	}

	tampered := append([]byte{}, body...)
	tampered[len(tampered)-3] ^= 1
	otherID := sign(t, now)
	otherID.Set(webhook.HeaderID, "msg_other")
	textTS := sign(t, now)
	textTS.Set(webhook.HeaderTimestamp, now.UTC().Format(time.RFC3339)) // not unix seconds
	shifted := sign(t, now)
	shifted.Set(webhook.HeaderTimestamp, sign(t, now.Add(time.Minute)).Get(webhook.HeaderTimestamp))
	for _, tc := range []struct {
		name    string
		secret  webhook.Secret
		headers http.Header
		body    []byte
		want    error
	}{
		{"tampered body", oldSecret, sign(t, now), tampered, sdk.ErrWebhookSignature},
		{"other id", newSecret, otherID, body, sdk.ErrWebhookSignature},
		{"timestamp moved", oldSecret, shifted, body, sdk.ErrWebhookSignature},
		{"timestamp not seconds", oldSecret, textTS, body, sdk.ErrWebhookHeaders},
		{"secret not among the signers", outsider, sign(t, now), body, sdk.ErrWebhookSignature},
		{"stale", oldSecret, sign(t, now.Add(-6*time.Minute)), body, sdk.ErrWebhookTimestamp},
		{"future", newSecret, sign(t, now.Add(6*time.Minute)), body, sdk.ErrWebhookTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sdk.VerifyWebhook(tc.secret.Reveal(), tc.headers, tc.body, 0)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("VerifyWebhook = %+v, %v; want nil, %v", got, err, tc.want)
			}
		})
	}
}
