package delivery_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/internal/webhook/delivery"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
)

type env struct {
	store storage.Storage
	mgr   *endpoint.Manager
	reg   *prometheus.Registry
	audit *auditLog
}

type auditLog struct {
	mu     sync.Mutex
	events []storage.AuditEvent
}

func (a *auditLog) add(_ context.Context, e storage.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *auditLog) all() []storage.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]storage.AuditEvent(nil), a.events...)
}

func newEnv(t *testing.T, allowPrivate bool) *env {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "dromos.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var key vault.Key
	key.ID = 1
	copy(key.Secret[:], "0123456789abcdef0123456789abcdef")
	ring, err := vault.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := endpoint.New(endpoint.Config{AllowPrivate: allowPrivate}, endpoint.Deps{Store: s, Vault: ring})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: s, mgr: mgr, reg: prometheus.NewRegistry(), audit: &auditLog{}}
}

// run starts a dispatcher until the test ends.
func (e *env) run(t *testing.T, cfg delivery.Config, client *http.Client) {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	x, err := delivery.New(cfg, delivery.Deps{Store: e.store, Secrets: e.mgr, Client: client, Registerer: e.reg,
		Jitter: func() float64 { return 0.5 }, Audit: e.audit.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// message is one request a receiver got.
type message struct {
	header http.Header
	body   []byte
}

// receiver records every request and answers with answer(n), n counting
// requests from 1.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []message
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.msgs = append(rc.msgs, message{header: r.Header.Clone(), body: body})
		n := len(rc.msgs)
		rc.mu.Unlock()
		if answer == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) messages() []message {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]message(nil), rc.msgs...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lifecycle takes a new connection of client through consent, a step-up,
// a dead grant and deletion: four events.
func lifecycle(t *testing.T, s storage.Storage, id, client string) {
	t.Helper()
	now := time.Now().UTC()
	c := storage.Connection{ID: id, WorkspaceID: "default", UserID: "user-" + id, ClientName: client,
		ProviderID: "p1", ProviderName: "google", Scopes: []string{"openid"}, Status: storage.StatusPending,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	step := func(fn func(*storage.Connection)) {
		t.Helper()
		_, err := s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			fn(&c)
			c.UpdatedAt = time.Now().UTC()
			return c, storage.TokenChange{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	step(func(c *storage.Connection) { c.Status = storage.StatusExchanging })
	step(func(c *storage.Connection) { c.Status = storage.StatusActive })
	step(func(c *storage.Connection) { c.Scopes = append(c.Scopes, "email") })
	step(func(c *storage.Connection) { c.Status, c.StatusReason = storage.StatusExpired, "invalid_grant" })
	step(func(c *storage.Connection) { c.Status, c.StatusReason = storage.StatusRevoked, "deleted" })
	if err := s.DeleteConnection(t.Context(), id); err != nil {
		t.Fatal(err)
	}
}

// referenceVerify checks every message with the standardwebhooks npm
// package in one node run; it skips when node or the package is missing.
func referenceVerify(t *testing.T, secret string, msgs []message) []struct {
	OK    bool   `json:"ok"`
	Type  string `json:"type"`
	Error string `json:"error"`
} {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: verifying with the standardwebhooks npm package needs Node.js")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "test", "webhooks"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		t.Skip("test/webhooks/node_modules missing: run (cd test/webhooks && npm ci) to verify with standardwebhooks")
	}
	var in []map[string]any
	for _, m := range msgs {
		in = append(in, map[string]any{"secret": secret, "body_base64": base64.StdEncoding.EncodeToString(m.body),
			"headers": map[string]string{"webhook-id": m.header.Get("webhook-id"),
				"webhook-timestamp": m.header.Get("webhook-timestamp"), "webhook-signature": m.header.Get("webhook-signature")}})
	}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(dir, "verify-all.mjs"))
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify-all.mjs: %v: %s", err, stderr.String())
	}
	var res []struct {
		OK    bool   `json:"ok"`
		Type  string `json:"type"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(msgs) {
		t.Fatalf("verify-all.mjs answered %q (%v), want %d results", out, err, len(msgs))
	}
	return res
}

func deliveries(t *testing.T, s storage.Storage, endpointID string) []storage.WebhookDelivery {
	t.Helper()
	ds, err := s.ListWebhookDeliveries(t.Context(), endpointID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func eventType(t *testing.T, body []byte) string {
	t.Helper()
	var ev struct {
		Type string `json:"type"`
		Data struct {
			ConnectionID string `json:"connection_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return fmt.Sprintf("%s %s", ev.Data.ConnectionID, ev.Type)
}
