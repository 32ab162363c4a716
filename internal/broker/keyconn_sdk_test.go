package broker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/sdk"
)

// TestKeyConnectionsThroughSDK connects an API key sent in a custom header
// and a basic pair through the SDK and the gateway, and calls the
// provider's API with the SDK's HTTPClient: the credential arrives where
// the profile's injection rule puts it.
func TestKeyConnectionsThroughSDK(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		var seen []string
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, fmt.Sprintf("%s x-api-key=%q authorization=%q", r.URL.Path, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization")))
			if r.Header.Get("X-Api-Key") == goodKey && r.Header.Get("Anthropic-Version") == "2023-06-01" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			if u, p, ok := r.BasicAuth(); ok && u == "AC0001" && p == basicPasswd {
				_, _ = io.WriteString(w, "ok")
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
		}))
		t.Cleanup(api.Close)
		s.h.registerProvider(map[string]any{"name": "anthropic", "auth_mode": "api_key", "credential": map[string]any{
			"injection": map[string]any{"header": "x-api-key"},
			"verify":    map[string]any{"url": api.URL + "/v1/models", "headers": map[string]string{"anthropic-version": "2023-06-01"}}}})
		s.h.registerProvider(map[string]any{"name": "twilio", "auth_mode": "basic"})
		c, err := sdk.New(s.gwURL, sdk.WithAPIKey(agentKey))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, tc := range []struct {
			provider string
			creds    *sdk.Credentials
			typ      string
		}{
			{"anthropic", &sdk.Credentials{APIKey: goodKey}, "api_key"},
			{"twilio", &sdk.Credentials{Username: "AC0001", Password: basicPasswd}, "basic"},
		} {
			conn, err := c.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "alice", ProviderName: tc.provider,
				ReturnURL: s.retURL, Credentials: tc.creds})
			if err != nil || conn.Status != sdk.StatusActive || conn.AuthURL != "" {
				t.Fatalf("%s: %+v %v (verification saw %v)", tc.provider, conn, err, seen)
			}
			if shown := fmt.Sprintf("%v %+v %#v", tc.creds, tc.creds, *tc.creds); strings.Contains(shown, basicPasswd) || strings.Contains(shown, goodKey) {
				t.Fatalf("Credentials print their secret: %s", shown)
			}
			tok, err := c.GetToken(ctx, conn.ConnectionID)
			if err != nil || tok.Credential == nil || tok.Credential.Type != tc.typ {
				t.Fatalf("%s token: %v %v", tc.provider, tok, err)
			}
			if shown := fmt.Sprintf("%v %+v", tok, *tok.Credential); strings.Contains(shown, basicPasswd) || strings.Contains(shown, goodKey) {
				t.Fatalf("token prints its credential: %s", shown)
			}
			hc := c.HTTPClient(ctx, conn.ConnectionID)
			req, _ := http.NewRequest("GET", api.URL+"/v1/call", nil)
			if tc.provider == "anthropic" {
				req.Header.Set("Anthropic-Version", "2023-06-01")
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: the API saw %v", tc.provider, seen)
			}
		}
		if last := seen[len(seen)-1]; strings.Contains(seen[len(seen)-2], "Bearer") || !strings.Contains(last, "Basic ") {
			t.Fatalf("credentials not injected by their rule: %v", seen)
		}
		// A refused key through the SDK: the connection is failed.
		conn, err := c.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "alice", ProviderName: "anthropic",
			ReturnURL: s.retURL, Credentials: &sdk.Credentials{APIKey: refusedKey}})
		if err != nil || conn.Status != sdk.StatusFailed || conn.StatusReason != "credential_refused" {
			t.Fatalf("refused key: %+v %v", conn, err)
		}
	})
}
