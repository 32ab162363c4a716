package endpoint_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
)

func newManager(t *testing.T) (*endpoint.Manager, storage.Storage, *time.Time) {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var key vault.Key
	key.ID = 3
	copy(key.Secret[:], "fedcba9876543210fedcba9876543210")
	ring, err := vault.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	m, err := endpoint.New(endpoint.Config{AllowPrivate: true, RotationWindow: time.Hour},
		endpoint.Deps{Store: s, Vault: ring, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return m, s, &now
}

// One agent cannot read, change, delete or even find another agent's
// endpoint; the operator sees them all.
func TestScopeKeepsAgentsApart(t *testing.T) {
	m, s, _ := newManager(t)
	a, b := endpoint.Scope{Owner: "agent-a"}, endpoint.Scope{Owner: "agent-b"}
	ep, _, err := m.Create(t.Context(), a, "https://hooks.example.com/a", []string{"connection.deleted"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(t.Context(), b, ep.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("B reads A's endpoint: %v", err)
	}
	if err := m.Delete(t.Context(), b, ep.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("B deletes A's endpoint: %v", err)
	}
	if _, _, err := m.RotateSecret(t.Context(), b, ep.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("B rotates A's secret: %v", err)
	}
	if _, err := m.Deliveries(t.Context(), b, ep.ID, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("B reads A's deliveries: %v", err)
	}
	if es, _ := m.List(t.Context(), b); len(es) != 0 {
		t.Errorf("B lists %d endpoints", len(es))
	}
	after, err := s.GetWebhookEndpoint(t.Context(), ep.ID)
	if err != nil || !bytes.Equal(after.Secret, ep.Secret) || after.PreviousSecret != nil {
		t.Fatalf("A's endpoint changed by B's attempts: %+v, %v", after, err)
	}
	if es, _ := m.List(t.Context(), endpoint.Scope{Operator: true}); len(es) != 1 {
		t.Errorf("the operator lists %d endpoints, want 1", len(es))
	}
	g, _, err := m.Create(t.Context(), endpoint.Scope{Operator: true}, "https://ops.example.com/hook", nil)
	if err != nil || g.Owner != "" {
		t.Fatalf("operator endpoint: %+v, %v", g, err)
	}
	if _, err := m.Get(t.Context(), a, g.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an agent reads a global endpoint: %v", err)
	}
	if _, _, err := m.Create(t.Context(), a, "https://hooks.example.com/a", []string{"connection.exploded"}); !errors.Is(err, endpoint.ErrBadEvents) {
		t.Errorf("unknown event type: %v", err)
	}
}

// The secret is stored sealed and bound to its endpoint; a rotation keeps
// the previous one signing for the window only.
func TestSecretSealedAndRotated(t *testing.T) {
	m, s, now := newManager(t)
	sc := endpoint.Scope{Owner: "agent-a"}
	ep, first, err := m.Create(t.Context(), sc, "https://hooks.example.com/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	row, _ := s.GetWebhookEndpoint(t.Context(), ep.ID)
	if bytes.Contains(row.Secret, []byte(first.Reveal())) || bytes.Contains(row.Secret, []byte("whsec_")) {
		t.Fatal("the secret is stored in clear")
	}
	secrets, err := m.Secrets(row, *now)
	if err != nil || len(secrets) != 1 || secrets[0].Reveal() != first.Reveal() {
		t.Fatalf("Secrets = %v, %v", secrets, err)
	}
	// A sealed secret copied onto another endpoint does not open there.
	other, _, err := m.Create(t.Context(), sc, "https://hooks.example.com/b", nil)
	if err != nil {
		t.Fatal(err)
	}
	other.Secret = row.Secret
	if _, err := m.Secrets(other, *now); err == nil {
		t.Error("a secret sealed for one endpoint opened for another")
	}

	_, second, err := m.RotateSecret(t.Context(), sc, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	row, _ = s.GetWebhookEndpoint(t.Context(), ep.ID)
	secrets, err = m.Secrets(row, *now)
	if err != nil || len(secrets) != 2 || secrets[0].Reveal() != second.Reveal() || secrets[1].Reveal() != first.Reveal() {
		t.Fatalf("during the window: %d secrets, %v", len(secrets), err)
	}
	secrets, _ = m.Secrets(row, now.Add(time.Hour))
	if len(secrets) != 1 || secrets[0].Reveal() != second.Reveal() {
		t.Fatalf("after the window: %d secrets", len(secrets))
	}
}

// In production the API refuses private targets without saying where the
// name resolved: agents cannot map the broker's network through it.
func TestAPIRefusesPrivateURLsWithoutDetail(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var key vault.Key
	key.ID = 1
	ring, _ := vault.NewKeyring(key)
	m, err := endpoint.New(endpoint.Config{}, endpoint.Deps{Store: s, Vault: ring})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	m.Routes(func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				httpapi.WriteError(w, r, slog.New(slog.DiscardHandler), err)
			}
		})
	})
	for _, tc := range []struct{ url, want string }{
		{"https://localhost/hook", "the host must resolve only to public addresses"},
		{"https://10.0.0.7/hook", "the host must resolve only to public addresses"},
		{"http://hooks.example.com/hook", "url: "},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/webhooks?client_name=agent-a", strings.NewReader(`{"url":"`+tc.url+`"}`))
		mux.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != 400 || !strings.Contains(body, tc.want) || strings.Contains(body, "127.0.0.1") || strings.Contains(body, "10.0.0.7") {
			t.Errorf("%s: %d %s", tc.url, rec.Code, body)
		}
	}
	if es, _ := s.ListWebhookEndpoints(t.Context(), storage.WebhookEndpointFilter{AnyOwner: true}); len(es) != 0 {
		t.Errorf("%d refused endpoints stored", len(es))
	}
}
