package broker_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/sdk"
)

// TestClientCredentialsProfile connects a provider registered with
// auth_mode oauth2_client_credentials at zitadel's example OP (its service
// user sid1), through the gateway and the SDK: active at creation, the
// token served from the vault, and a new one asked for when a read finds
// it within the refresh margin.
func TestClientCredentialsProfile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		s.h.registerProvider(map[string]any{"name": "svc", "auth_mode": "oauth2_client_credentials",
			"issuer": s.op.Issuer, "enable_discovery": true, "client_id": "sid1", "client_secret": "verysecret",
			"token_endpoint_auth_method": "client_secret_basic"})
		c, err := sdk.New(s.gwURL, sdk.WithAPIKey(agentKey))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		conn, err := c.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "svc-account", ProviderName: "svc",
			Scopes: []string{"profile"}, ReturnURL: s.retURL})
		if err != nil || conn.Status != sdk.StatusActive || conn.AuthURL != "" {
			t.Fatalf("client credentials connection: %+v %v", conn, err)
		}
		first, err := c.GetToken(ctx, conn.ConnectionID)
		if err != nil || first.AccessToken == "" || first.ExpiresAt.IsZero() {
			t.Fatalf("first token: %v %v", first, err)
		}
		again, err := c.GetToken(ctx, conn.ConnectionID)
		if err != nil || again.AccessToken != first.AccessToken {
			t.Fatalf("a fresh token was not served from the vault: %v", err)
		}
		// Within the margin of expiry, the next read asks the OP again.
		s.h.clock.Advance(time.Until(first.ExpiresAt) - 30*time.Second)
		renewed, err := c.GetToken(ctx, conn.ConnectionID)
		if err != nil || renewed.AccessToken == first.AccessToken {
			t.Fatalf("no new token near expiry: %v", err)
		}
		// A wrong secret is refused at creation and stores nothing.
		s.h.registerProvider(map[string]any{"name": "svc-bad", "auth_mode": "oauth2_client_credentials",
			"issuer": s.op.Issuer, "enable_discovery": true, "client_id": "sid1", "client_secret": "wrong",
			"token_endpoint_auth_method": "client_secret_basic"})
		var env map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "svc-account", "provider_name": "svc-bad", "scopes": []string{"profile"}, "return_url": s.retURL}, &env); st != http.StatusBadGateway {
			t.Fatalf("wrong client secret: %d %v", st, env)
		}
	})
}
