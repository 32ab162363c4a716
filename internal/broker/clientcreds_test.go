package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/testenv"
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

// TestClientCredentialsAcrossBrokersOneRequest: two brokers on one
// PostgreSQL, a client_credentials connection whose token is within the
// refresh margin, 40 concurrent readers split between them: the OP is
// asked for one new token, not one per broker or reader.
func TestClientCredentialsAcrossBrokersOneRequest(t *testing.T) {
	dbURL := backends(t)["postgres"](t)
	h := newHarness(t, dbURL)
	o := newHarness(t, dbURL)
	o.clock = h.clock
	o.start()
	op := testenv.StartOP(t, h.srv.URL+"/auth/callback")
	var asked atomic.Int32
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			asked.Add(1)
			time.Sleep(100 * time.Millisecond) // readers pile up meanwhile
		}
		op.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(counting.Close)
	h.registerProvider(map[string]any{"name": "svc", "auth_mode": "oauth2_client_credentials",
		"token_url": counting.URL + "/oauth/token", "client_id": "sid1", "client_secret": "verysecret",
		"token_endpoint_auth_method": "client_secret_basic"})
	var conn consentResp
	if st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "user_id": "svc", "provider_name": "svc",
		"scopes": []string{"profile"}, "return_url": "https://agent.example/back"}, &conn); st != http.StatusOK || conn.ConnectionID == "" {
		t.Fatalf("client credentials connection: %d %+v", st, conn)
	}
	first := map[string]any{}
	h.do("GET", "/connections/"+conn.ConnectionID+"/token", nil, &first)
	exp, err := time.Parse(time.RFC3339, first["expires_at"].(string))
	if err != nil || asked.Load() != 1 {
		t.Fatalf("first token: %v, %d requests", err, asked.Load())
	}
	h.clock.Advance(exp.Sub(h.clock.Now()) - 30*time.Second)
	var wg sync.WaitGroup
	var stale, failed atomic.Int32
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := map[string]any{}
			if st := []*harness{h, o}[i%2].do("GET", "/connections/"+conn.ConnectionID+"/token", nil, &tok); st != http.StatusOK {
				failed.Add(1)
			} else if tok["access_token"] == first["access_token"] {
				stale.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 || stale.Load() != 0 {
		t.Fatalf("%d reads failed, %d got the old token", failed.Load(), stale.Load())
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("the OP was asked for %d tokens, want 2 (creation and one renewal)", n)
	}
}
