package registry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
	"github.com/dromos-dev/dromos/internal/vault"
)

// A 404 for a provider names the provider asked for, so a typo shows.
func TestProviderNotFoundNamesWhatWasAsked(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	for _, c := range []struct{ id, name, want string }{
		{"", "githbu", `provider "githbu" not found`},
		{"not-a-uuid", "", `provider "not-a-uuid" not found`},
		{"00000000-0000-4000-8000-000000000000", "", `provider "00000000-0000-4000-8000-000000000000" not found`},
		{"", "bad\x1b]0;title\x07", `provider "bad\x1b]0;title\a" not found`},
		{"", strings.Repeat("x", 500), `provider "` + strings.Repeat("x", 80) + `…" not found`},
	} {
		_, err := f.reg.Lookup(ctx, c.id, c.name)
		he, ok := httpapi.As(err)
		if !ok || he.Status != http.StatusNotFound || he.Code != httpapi.CodeNotFound || he.Message != c.want {
			t.Errorf("lookup %q/%q: %v, want 404 %q", c.id, c.name, err, c.want)
		}
	}
	for _, path := range []string{"/providers/by-name/githbu", "/providers/00000000-0000-4000-8000-000000000000"} {
		st, body := f.do(t, "GET", path, nil)
		if st != http.StatusNotFound || !strings.Contains(body["message"].(string), path[strings.LastIndex(path, "/")+1:]) {
			t.Errorf("GET %s: %d %v", path, st, body)
		}
	}
}

// A failed discovery at registration says which kind of failure it was;
// in production the answer holds no address, outside it the full cause.
func TestDiscoveryFailureReasonInAnswer(t *testing.T) {
	iss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/notjson/"):
			_, _ = w.Write([]byte("<html>hello</html>"))
		case strings.HasPrefix(r.URL.Path, "/teapot/"):
			w.WriteHeader(http.StatusTeapot)
		default:
			http.NotFound(w, r)
		}
	}))
	defer iss.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	host := strings.TrimPrefix(iss.URL, "http://")

	tests := []struct {
		name, issuer, reason string
	}{
		{"404 on both documents", iss.URL + "/missing", "discovery: HTTP 404"},
		{"other status", iss.URL + "/teapot", "discovery: HTTP 418"},
		{"not JSON", iss.URL + "/notjson", "discovery: not JSON"},
		{"unreachable", goneURL, "discovery: unreachable"},
	}
	for _, explain := range []bool{false, true} {
		reg := newRegistry(t, explain)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := reg.Ensure(context.Background(), provider.Profile{Name: "p", Issuer: tc.issuer, EnableDiscovery: true,
					ClientID: "cid", ClientSecret: "s", Scopes: []string{"openid"}})
				he, ok := httpapi.As(err)
				if !ok || he.Status != http.StatusBadRequest || he.Code != "discovery_failed" || !strings.Contains(he.Message, tc.reason) {
					t.Fatalf("explain=%v: %v, want 400 discovery_failed with %q", explain, err, tc.reason)
				}
				leaks := strings.Contains(he.Message, "127.0.0.1") || strings.Contains(he.Message, host)
				if leaks != explain {
					t.Fatalf("explain=%v: message %q", explain, he.Message)
				}
			})
		}
	}
}

func newRegistry(t *testing.T, explain bool) *registry.Registry {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dromos.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := vault.NewKeyring(vault.Key{ID: 1, Secret: [vault.KeySize]byte{4, 5, 6}})
	if err != nil {
		t.Fatal(err)
	}
	disco := discovery.New(discovery.Options{HTTPClient: &http.Client{Timeout: 5 * time.Second}, RetryInterval: time.Millisecond})
	reg, err := registry.New(registry.Deps{Store: store, Vault: ring, Discovery: disco, ExplainErrors: explain})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
