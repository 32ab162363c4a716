package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/state"
)

func TestPerClientRateLimit(t *testing.T) {
	const keyOfA, keyOfB = "key-a-0123456789abcdef", "key-b-0123456789abcdef"
	clients, err := gateway.ParseClientKeys("a:" + keyOfA + ",b:" + keyOfB)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	g, err := gateway.New(gateway.Config{BrokerBaseURL: "http://127.0.0.1:1", StateKeys: []state.Key{stateKey(1)}, Clients: clients, RateLimit: 3},
		gateway.Deps{Logger: logging.Discard(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	do := func(key string) *httptest.ResponseRecorder {
		// A malformed id is refused after authentication and the limit,
		// before any broker call.
		r := httptest.NewRequest("GET", "/v1/token/not-a-uuid", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		g.HTTPHandler().ServeHTTP(w, r)
		return w
	}
	for i := 0; i < 6; i++ { // burst: twice the per-second rate
		if w := do(keyOfA); w.Code != http.StatusBadRequest {
			t.Fatalf("request %d: %d", i+1, w.Code)
		}
	}
	w := do(keyOfA)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("7th request: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := do(keyOfB); w.Code != http.StatusBadRequest {
		t.Fatalf("another agent was limited too: %d", w.Code)
	}
	if w := do("wrong-key"); w.Code != http.StatusUnauthorized {
		t.Fatalf("unauthenticated request: %d", w.Code)
	}
}

// One agent asking for consents in a loop is stopped at the gateway, which
// knows the agent, before the broker sees the flood; another agent keeps
// its own budget, over REST and gRPC alike.
func TestPerAgentConsentLimit(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) { c.ConsentRatePerMinute = 3 })
	body := `{"user_id":"u-42","provider_name":"google","scopes":["openid"],"return_url":"https://app.example.com/done"}`
	for i := range 3 {
		if res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA), body); res.status != http.StatusOK {
			t.Fatalf("agent-a request %d: %d %s", i+1, res.status, res.body)
		}
	}
	before := h.fb.requests.Load()
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA), body)
	if code, _ := res.envelope(t); res.status != http.StatusTooManyRequests || code != "rate_limited" || res.header.Get("Retry-After") == "" {
		t.Fatalf("agent-a 4th request: %d %s Retry-After=%q", res.status, res.body, res.header.Get("Retry-After"))
	}
	if n := h.fb.requests.Load(); n != before {
		t.Fatalf("the limited request reached the broker (%d calls)", n-before)
	}
	cl, _ := h.grpcClient()
	if _, err := cl.RequestConnection(withKey(t.Context(), keyA), &dromosv1.RequestConnectionRequest{UserId: "u-42",
		ProviderName: "google", Scopes: []string{"openid"}, ReturnUrl: "https://app.example.com/done"}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("agent-a over gRPC: %v, want ResourceExhausted", err)
	}
	if res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyB), body); res.status != http.StatusOK {
		t.Fatalf("agent-b after agent-a's flood: %d %s", res.status, res.body)
	}
	// Reads are not connection requests: agent-a can still use what it has.
	if res := h.call("GET", "/v1/providers", "/v1/providers", bearer(keyA), ""); res.status != http.StatusOK {
		t.Fatalf("agent-a providers: %d", res.status)
	}
}
