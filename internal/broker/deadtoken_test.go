package broker_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Providers that answer a dead refresh token with their own error code,
// inside an HTTP 200, make the connection expired and the read a 409
// reauth_required, as invalid_grant does: not a 503 on every read while the
// broker keeps asking the provider.
func TestProviderDeadRefreshTokenCodes(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"GitHub bad_refresh_token", `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired.","error_uri":"https://docs.github.com/apps"}`},
		{"Slack invalid_refresh_token", `{"ok":false,"error":"invalid_refresh_token"}`},
		{"Slack token_revoked", `{"ok":false,"error":"token_revoked"}`},
		{"Slack token_expired", `{"ok":false,"error":"token_expired"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, p, id := setupRotating(t, sqliteURL(t))
			p.set(func(p *rotatingProvider) { p.fail = func() (int, string) { return http.StatusOK, tt.body } })
			h.clock.Advance(2 * time.Hour) // the access token is gone: only a refresh can serve the read
			st, body := h.token(id)
			if st != http.StatusConflict || body["code"] != "reauth_required" {
				t.Fatalf("read after the provider refused the refresh token: %d %v", st, body)
			}
			c, err := h.store.GetConnection(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Status != storage.StatusExpired {
				t.Fatalf("status %s, want expired", c.Status)
			}
			h.assertNoToken(id)
			// The grant is dead: later reads answer at once, without asking
			// the provider again.
			h.clock.Advance(11 * time.Minute)
			if st, _ := h.token(id); st != http.StatusConflict || p.refreshes.Load() != 1 {
				t.Fatalf("second read %d, provider asked %d times", st, p.refreshes.Load())
			}
		})
	}
}

// GitHub's name for refused client credentials is a client problem, not a
// dead grant: the connection stays active and backs off, as for
// invalid_client.
func TestProviderIncorrectClientCredentials(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	p.set(func(p *rotatingProvider) {
		p.fail = func() (int, string) {
			return http.StatusOK, `{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}`
		}
	})
	h.clock.Advance(2 * time.Hour)
	st, body := h.token(id)
	if st != http.StatusBadGateway || body["code"] != "provider_error" {
		t.Fatalf("read: %d %v", st, body)
	}
	c, err := h.store.GetConnection(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != storage.StatusActive || c.LastErrorClass != string(exchange.ClassInvalidClient) {
		t.Fatalf("status %s, last error class %q", c.Status, c.LastErrorClass)
	}
	h.token(id)
	if got := p.refreshes.Load(); got != 1 {
		t.Fatalf("provider asked %d times during the backoff, want 1", got)
	}
}
