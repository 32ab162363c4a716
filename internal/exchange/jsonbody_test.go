package exchange_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

// jsonOnlyProvider accepts token requests only as JSON objects of strings,
// as Notion documents its token endpoint, and records what it got.
type jsonOnlyProvider struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []map[string]string
	basic    []string
	versions []string
}

func newJSONOnlyProvider(t *testing.T) *jsonOnlyProvider {
	p := &jsonOnlyProvider{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"body must be JSON"}`))
			return
		}
		p.mu.Lock()
		p.bodies = append(p.bodies, body)
		p.basic = append(p.basic, r.Header.Get("Authorization"))
		p.versions = append(p.versions, r.Header.Get("Notion-Version"))
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(tokenBody))
	}))
	t.Cleanup(p.Close)
	return p
}

func TestJSONBody(t *testing.T) {
	p := newJSONOnlyProvider(t)
	c := newClient(exchange.Options{})
	ctx := context.Background()

	// A form-encoded request is refused by this provider: the fake is strict.
	if _, err := c.ExchangeCode(ctx, endpoint(p.URL, exchange.AuthPost), testCode, testVerifier, testRedirect); err == nil {
		t.Fatal("the JSON-only fake accepted a form body")
	}

	post := endpoint(p.URL, exchange.AuthPost)
	post.JSONBody = true
	if _, err := c.ExchangeCode(ctx, post, testCode, testVerifier, testRedirect); err != nil {
		t.Fatalf("ExchangeCode with a JSON body: %v", err)
	}
	basic := endpoint(p.URL, exchange.AuthBasic)
	basic.JSONBody = true
	if _, err := c.Refresh(ctx, basic, testRefresh, nil); err != nil {
		t.Fatalf("Refresh with a JSON body: %v", err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	want := []map[string]string{
		{"grant_type": "authorization_code", "code": testCode, "redirect_uri": testRedirect, "code_verifier": testVerifier,
			"client_id": testClientID, "client_secret": testSecret},
		{"grant_type": "refresh_token", "refresh_token": testRefresh},
	}
	if len(p.bodies) != len(want) {
		t.Fatalf("provider got %d JSON requests, want %d", len(p.bodies), len(want))
	}
	for i := range want {
		if !maps.Equal(p.bodies[i], want[i]) {
			t.Errorf("request %d body = %v, want %v", i, p.bodies[i], want[i])
		}
	}
	if p.basic[0] != "" || p.basic[1] == "" {
		t.Errorf("Authorization headers = %q, want none for client_secret_post and Basic for client_secret_basic", p.basic)
	}
}

// A JSON revocation request carries the token alone (Notion documents
// {"token": …}; token_type_hint is RFC 7009's form parameter), and extra
// headers reach the revocation endpoint as they reach the token endpoint.
func TestJSONBodyRevocation(t *testing.T) {
	p := newJSONOnlyProvider(t)
	c := newClient(exchange.Options{})
	ep := endpoint(p.URL, exchange.AuthBasic)
	ep.JSONBody = true
	ep.ExtraHeaders = map[string]string{"Notion-Version": "2025-09-03"}
	if err := c.Revoke(context.Background(), p.URL+"/revoke", ep, testRefresh, "refresh_token"); err != nil {
		t.Fatalf("Revoke with a JSON body: %v", err)
	}
	form := endpoint(p.URL, exchange.AuthBasic)
	if err := c.Revoke(context.Background(), p.URL+"/revoke", form, testRefresh, "refresh_token"); err == nil {
		t.Fatal("the JSON-only fake accepted a form revocation")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bodies) != 1 || !maps.Equal(p.bodies[0], map[string]string{"token": testRefresh}) {
		t.Fatalf("revocation bodies = %v, want one {token}", p.bodies)
	}
	if p.versions[0] != "2025-09-03" || p.basic[0] == "" {
		t.Fatalf("revocation headers: Notion-Version %q, Authorization set %v", p.versions[0], p.basic[0] != "")
	}
}
