package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
