package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/catalog"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
	"github.com/dromos-dev/dromos/internal/vault"
)

// clock is a settable test clock; with real set it follows the wall
// clock (tests of timing across replicas).
type clock struct {
	mu   sync.Mutex
	t    time.Time
	real bool
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now().UTC()
	}
	return c.t
}

// RealTime makes the clock follow the wall clock from now on.
func (c *clock) RealTime() {
	c.mu.Lock()
	c.real = true
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// backends are the storage backends every broker test runs on.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + t.TempDir() + "/dromos.db" },
		"postgres": func(t *testing.T) string { return storagetest.PostgresURL(t) },
	}
}

func forEachBackend(t *testing.T, f func(t *testing.T, dbURL string)) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) { f(t, mk(t)) })
	}
}

// keys used by every harness; a foreign key signs states the broker must
// refuse.
var (
	encKey     = vault.Key{ID: 1, Secret: [32]byte{1, 2, 3}}
	stateKey   = state.Key{ID: 1, Secret: bytes.Repeat([]byte{7}, 32)}
	foreignKey = state.Key{ID: 1, Secret: bytes.Repeat([]byte{9}, 32)}
)

type harness struct {
	t      *testing.T
	dbURL  string
	clock  *clock
	store  storage.Storage
	broker *broker.Broker
	srv    *httptest.Server
	logs   *syncBuffer
	cfg    broker.Config
	// handler is what the server serves; start swaps it on restart.
	handler atomic.Pointer[http.Handler]
	// flow is the user's browser: it visits the start URL (getting the
	// flow cookie) and then the callback; it never follows redirects.
	flow *http.Client
	// encKeys and stateKeys configure the next start (first is primary).
	encKeys   []vault.Key
	stateKeys []state.Key
	// wrapStore, when set, wraps the store the next start gives the broker.
	wrapStore func(storage.Storage) storage.Storage
	// mcpGuard, when set, replaces the MCP discovery guard of the next start.
	mcpGuard mcp.Guard
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHarness starts a broker on a loopback server backed by dbURL.
func newHarness(t *testing.T, dbURL string, tweak ...func(*broker.Config)) *harness {
	t.Helper()
	h := &harness{t: t, dbURL: dbURL, clock: &clock{t: time.Now().UTC()}, logs: &syncBuffer{},
		encKeys: []vault.Key{encKey}, stateKeys: []state.Key{stateKey}}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.flow = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*h.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	h.cfg = broker.Config{BaseURL: h.srv.URL, RedirectPath: "/auth/callback"}
	for _, f := range tweak {
		f(&h.cfg)
	}
	h.start()
	return h
}

// start opens the store and builds a broker on it (again after restart).
func (h *harness) start() {
	t := h.t
	log := logging.New(h.logs, slog.LevelDebug) // debug: every line the broker can write
	store, err := database.Open(context.Background(), h.dbURL, database.Options{Logger: log, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var brokerStore storage.Storage = store
	if h.wrapStore != nil {
		brokerStore = h.wrapStore(store)
	}
	ring, err := vault.NewKeyring(h.encKeys[0], h.encKeys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := state.NewSigner(h.stateKeys[0], h.stateKeys[1:], state.Options{Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	guard := h.mcpGuard
	if guard == nil {
		guard = mcp.DevGuard
	}
	b, err := broker.New(h.cfg, broker.Deps{
		MCP:   mcp.New(mcp.Options{HTTPClient: hc, Guard: guard}),
		Store: brokerStore, Vault: ring, State: signer,
		Exchange:  exchange.New(exchange.Options{HTTPClient: hc, Timeout: 2 * time.Second, Now: h.clock.Now, Logger: log}),
		Discovery: discovery.New(discovery.Options{HTTPClient: hc, Now: h.clock.Now, Logger: log}),
		IDTokens:  idtoken.NewVerifier(idtoken.Options{HTTPClient: hc, Now: h.clock.Now, Logger: log}),
		Catalog:   cat, HTTPClient: hc,
		Logger: log, Registerer: reg, Gatherer: reg, Now: h.clock.Now, Rand: rand.Reader,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close) // runs before the store closes: flushes queued audit events
	h.store, h.broker = store, b
	hd := b.Handler()
	h.handler.Store(&hd)
}

// do sends a JSON request to the broker and decodes the JSON answer.
func (h *harness) do(method, path string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

type envelope struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type consentResp struct {
	AuthURL      string   `json:"authUrl"`
	State        string   `json:"state"`
	Scopes       []string `json:"scopes"`
	ProviderID   string   `json:"provider_id"`
	ConnectionID string   `json:"connection_id"`
	// ProviderURL is where the start URL sent the browser.
	ProviderURL string `json:"-"`
}

func (h *harness) registerProvider(profile map[string]any) string {
	h.t.Helper()
	var out struct {
		ID string `json:"id"`
		envelope
	}
	if st := h.do("POST", "/providers", map[string]any{"profile": profile}, &out); st != http.StatusCreated {
		h.t.Fatalf("register provider: %d %+v", st, out)
	}
	return out.ID
}

func (h *harness) consent(providerName string, scopes []string, returnURL string) consentResp {
	h.t.Helper()
	out := h.consentOnly(providerName, scopes, returnURL)
	out.ProviderURL = h.visitStart(out.AuthURL).Header.Get("Location")
	return out
}

// consentOnly creates the consent without opening its authUrl: the first
// browser to open it is the one the flow binds.
func (h *harness) consentOnly(providerName string, scopes []string, returnURL string) consentResp {
	h.t.Helper()
	var out consentResp
	st := h.do("POST", "/auth/consent-spec", map[string]any{
		"workspace_id": "ws-1", "user_id": "u-1", "provider_name": providerName,
		"scopes": scopes, "return_url": returnURL,
	}, &out)
	if st != http.StatusOK {
		h.t.Fatalf("consent: %d", st)
	}
	return out
}

// visitStart opens an authUrl in the user's browser: the broker sets the
// flow cookie and redirects to the provider (not followed).
func (h *harness) visitStart(authURL string) *http.Response {
	h.t.Helper()
	resp, err := h.flow.Get(authURL)
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// callback hits the callback directly without following the redirect.
func (h *harness) callback(query url.Values) *http.Response {
	h.t.Helper()
	resp, err := h.flow.Get(h.srv.URL + "/auth/callback?" + query.Encode())
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// assertNoToken checks the connection holds no token and is not active.
func (h *harness) assertNoToken(connID string) {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.store.GetToken(ctx, connID); err == nil {
		h.t.Fatalf("connection %s has a stored token", connID)
	}
	c, err := h.store.GetConnection(ctx, connID)
	if err == nil && c.Status == storage.StatusActive {
		h.t.Fatalf("connection %s is active", connID)
	}
}

func (h *harness) status(connID string) storage.ConnectionStatus {
	h.t.Helper()
	c, err := h.store.GetConnection(context.Background(), connID)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.Status
}

func sha(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
