package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/dromos-dev/dromos/internal/config"
)

// The proxy and rate-limit variables, read from the environment the way
// `dromos broker` reads them, change what the running broker does.
func TestBrokerEnvReachesGuards(t *testing.T) {
	env := config.Env{
		"DATABASE_URL":        "sqlite:" + filepath.Join(t.TempDir(), "b.db"),
		"ENCRYPTION_KEY":      "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
		"STATE_KEY":           "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
		"RATE_LIMIT_CALLBACK": "2",
		"REQUIRE_ALLOWLIST":   "true",
		"ALLOWED_CIDRS":       "127.0.0.0/8",
		"TRUSTED_PROXIES":     "127.0.0.1/32",
	}
	cfg, err := config.LoadBroker(env)
	if err != nil {
		t.Fatal(err)
	}
	svc, store, err := buildBroker(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), newRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); store.Close() })
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)

	get := func(path, xff string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The trusted proxy (this test, on 127.0.0.1) forwards for an outside
	// client: the allowlist judges that client, not the proxy.
	if st := get("/providers", "203.0.113.5"); st != http.StatusForbidden {
		t.Fatalf("outside client behind the trusted proxy: %d, want 403", st)
	}
	if st := get("/providers", "127.0.0.9"); st != http.StatusOK {
		t.Fatalf("inside client behind the trusted proxy: %d, want 200", st)
	}
	// RATE_LIMIT_CALLBACK=2: the third callback from one address is 429.
	var got []int
	for range 3 {
		got = append(got, get("/auth/callback?state=x", ""))
	}
	if got[0] == http.StatusTooManyRequests || got[2] != http.StatusTooManyRequests {
		t.Fatalf("callback statuses %v, want the third to be 429", got)
	}
}
