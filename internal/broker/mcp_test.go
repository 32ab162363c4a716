package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/netguard"
	"github.com/dromos-dev/dromos/internal/storage"
)

// fakeMCP is a remote MCP server with its own authorization server on one
// listener. Each field switches a behaviour; token requests are recorded.
type fakeMCP struct {
	srv *httptest.Server
	mu  sync.Mutex
	// noS256 leaves S256 out of the server metadata; resource overrides
	// the resource the protected-resource metadata names; asAddr
	// overrides the authorization server it names.
	noS256   bool
	resource string
	asAddr   string
	// register answers dynamic registration (default: a confidential
	// client).
	register      func(w http.ResponseWriter, r *http.Request)
	registrations int
	authorizes    []url.Values
	tokenForms    []url.Values
	tokenAuth     []string
	issued        int
}

func newFakeMCP(t *testing.T) *fakeMCP {
	f := &fakeMCP{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMCP) url() string { return f.srv.URL + "/mcp" }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeMCP) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	base := f.srv.URL
	switch r.Method + " " + r.URL.Path {
	case "POST /mcp":
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp", scope="tools:read"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
	case "GET /.well-known/oauth-protected-resource/mcp":
		res, as := base+"/mcp", base
		if f.resource != "" {
			res = f.resource
		}
		if f.asAddr != "" {
			as = f.asAddr
		}
		writeJSON(w, 200, map[string]any{"resource": res, "authorization_servers": []string{as}, "scopes_supported": []string{"tools:read", "tools:write"}})
	case "GET /.well-known/oauth-authorization-server":
		md := map[string]any{"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"registration_endpoint": base + "/register", "revocation_endpoint": base + "/revoke",
			"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic"}}
		if !f.noS256 {
			md["code_challenge_methods_supported"] = []string{"S256"}
		}
		writeJSON(w, 200, md)
	case "POST /register":
		f.registrations++
		if f.register != nil {
			f.register(w, r)
			return
		}
		writeJSON(w, 201, map[string]any{"client_id": "dyn-client", "client_secret": "dyn-secret", "token_endpoint_auth_method": "client_secret_basic"})
	case "GET /authorize":
		f.authorizes = append(f.authorizes, r.URL.Query())
		http.Error(w, "the test drives the callback itself", http.StatusTeapot)
	case "POST /token":
		_ = r.ParseForm()
		f.tokenForms = append(f.tokenForms, r.PostForm)
		f.tokenAuth = append(f.tokenAuth, r.Header.Get("Authorization"))
		f.issued++
		if r.PostForm.Get("grant_type") == "client_credentials" {
			writeJSON(w, 200, map[string]any{"access_token": "mcp-cc-" + string(rune('0'+f.issued)), "token_type": "Bearer", "expires_in": 600})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": "mcp-at-" + string(rune('0'+f.issued)), "token_type": "Bearer",
			"expires_in": 3600, "refresh_token": "mcp-rt", "scope": "tools:read"})
	case "POST /revoke":
		w.WriteHeader(200)
	default:
		http.NotFound(w, r)
	}
}

func (h *harness) mcpConsent(serverURL string, scopes []string) (consentResp, int, envelope) {
	h.t.Helper()
	var out struct {
		consentResp
		envelope
	}
	body := map[string]any{"workspace_id": "ws-1", "user_id": "u-1", "mcp_server_url": serverURL, "return_url": "https://app.example.com/done"}
	if scopes != nil {
		body["scopes"] = scopes
	}
	st := h.do("POST", "/auth/consent-spec", body, &out)
	return out.consentResp, st, out.envelope
}

func TestMCPConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		f := newFakeMCP(t)
		h := newHarness(t, dbURL)
		c, st, env := h.mcpConsent(f.url(), nil)
		if st != http.StatusOK {
			t.Fatalf("consent: %d %+v", st, env)
		}
		if strings.Join(c.Scopes, " ") != "tools:read" {
			t.Fatalf("scopes %q: want the challenge's", c.Scopes)
		}
		loc := h.visitStart(c.AuthURL).Header.Get("Location")
		au, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, f.srv.URL+"/authorize?") {
			t.Fatalf("start redirected to %q", loc)
		}
		q := au.Query()
		if q.Get("resource") != f.url() || q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "dyn-client" || q.Get("scope") != "tools:read" {
			t.Fatalf("authorization request %v", q)
		}
		resp := h.callback(url.Values{"state": {q.Get("state")}, "code": {"the-code"}})
		if resp.StatusCode != http.StatusFound || h.status(c.ConnectionID) != storage.StatusActive {
			t.Fatalf("callback: %d, status %s", resp.StatusCode, h.status(c.ConnectionID))
		}
		f.mu.Lock()
		form, auth := f.tokenForms[0], f.tokenAuth[0]
		f.mu.Unlock()
		if form.Get("resource") != f.url() || form.Get("code_verifier") == "" || !strings.HasPrefix(auth, "Basic ") {
			t.Fatalf("code exchange form %v auth %q", form, auth)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if st := h.do("GET", "/connections/"+c.ConnectionID+"/token", nil, &tok); st != 200 || tok.AccessToken != "mcp-at-1" {
			t.Fatalf("token: %d %+v", st, tok)
		}

		// A second connection to the same server reuses the client.
		if _, st, env := h.mcpConsent(f.url(), []string{"tools:write"}); st != http.StatusOK {
			t.Fatalf("second consent: %d %+v", st, env)
		}
		f.mu.Lock()
		regs := f.registrations
		f.mu.Unlock()
		if regs != 1 {
			t.Fatalf("%d registrations for two connections, want 1", regs)
		}
		stored, err := h.store.GetMCPClient(context.Background(), f.srv.URL)
		if err != nil || stored.ClientID != "dyn-client" || stored.Source != "dynamic" || strings.Contains(string(stored.Credentials), "dyn-secret") {
			t.Fatalf("stored client %+v, %v", stored, err)
		}

		// After a restart a forced refresh still carries the resource.
		h.start()
		if st := h.do("POST", "/connections/"+c.ConnectionID+"/refresh", nil, &tok); st != 200 || tok.AccessToken != "mcp-at-2" {
			t.Fatalf("refresh after restart: %d %+v", st, tok)
		}
		f.mu.Lock()
		last := f.tokenForms[len(f.tokenForms)-1]
		f.mu.Unlock()
		if last.Get("grant_type") != "refresh_token" || last.Get("resource") != f.url() {
			t.Fatalf("refresh form %v", last)
		}
	})
}

func TestMCPRefusalsStoreNothing(t *testing.T) {
	cases := []struct {
		name  string
		setup func(f *fakeMCP, h *harness)
		code  string
	}{
		{"authorization server without S256", func(f *fakeMCP, _ *harness) { f.noS256 = true }, mcp.CodeNoS256},
		{"resource mismatch", func(f *fakeMCP, _ *harness) { f.resource = "https://evil.example.com/mcp" }, mcp.CodeResourceMismatch},
		{"metadata names a cloud metadata address", func(f *fakeMCP, _ *harness) { f.asAddr = "http://169.254.169.254/latest" }, mcp.CodeBlockedAddress},
		{"metadata names a private address in production", func(f *fakeMCP, h *harness) {
			f.asAddr = "http://10.0.0.7"
			h.mcpGuard = productionGuardButTestServer(f.srv.URL)
			h.start()
		}, mcp.CodeBlockedAddress},
		{"registration answers 500", func(f *fakeMCP, _ *harness) {
			f.register = func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "database on fire", 500) }
		}, mcp.CodeRegistrationFailed},
		{"registration answers garbage", func(f *fakeMCP, _ *harness) {
			f.register = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(201)
				_, _ = w.Write([]byte(`{"client_id": 42, "client_secret": [`))
			}
		}, mcp.CodeRegistrationFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "sqlite:"+t.TempDir()+"/dromos.db")
			f := newFakeMCP(t)
			tc.setup(f, h)
			_, st, env := h.mcpConsent(f.url(), nil)
			if st < 400 || st >= 500 || env.Code != tc.code {
				t.Fatalf("consent: %d %+v, want 4xx %s", st, env, tc.code)
			}
			if strings.Contains(env.Message, "on fire") {
				t.Fatalf("remote body in the answer: %q", env.Message)
			}
			ctx := context.Background()
			if cs, _ := h.store.ListMCPClients(ctx); len(cs) != 0 {
				t.Fatalf("clients stored: %+v", cs)
			}
			if ps, _ := h.store.ListProviders(ctx); len(ps) != 0 {
				t.Fatalf("providers stored: %+v", ps)
			}
			if conns, _ := h.store.ListConnections(ctx, storage.ConnectionFilter{}); len(conns) != 0 {
				t.Fatalf("connections stored: %+v", conns)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.authorizes)+len(f.tokenForms) != 0 {
				t.Fatal("an authorization or token request was made")
			}
		})
	}
}

// productionGuardButTestServer judges URLs as production does, except the
// test's own loopback server, which stands in for a public host.
func productionGuardButTestServer(base string) mcp.Guard {
	prod := mcp.ProductionGuard(nil)
	return func(ctx context.Context, raw string) error {
		if strings.HasPrefix(raw, base+"/") {
			return nil
		}
		if err := netguard.CheckURL(raw, true); err != nil {
			return err
		}
		u, _ := url.Parse(raw)
		if err := netguard.CheckHost(ctx, nil, u.Host); err != nil {
			return err
		}
		return prod(ctx, raw)
	}
}

func TestMCPClientCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		f := newFakeMCP(t)
		h := newHarness(t, dbURL)
		body := map[string]any{"workspace_id": "ws-1", "user_id": "svc", "mcp_server_url": f.url(), "grant": "client_credentials",
			"return_url": "https://app.example.com/done"}
		var env envelope
		if st := h.do("POST", "/auth/consent-spec", body, &env); st != http.StatusBadRequest || env.Code != mcp.CodeNoClient {
			t.Fatalf("client_credentials without an operator's client: %d %+v", st, env)
		}
		if ps, _ := h.store.ListProviders(context.Background()); len(ps) != 0 {
			t.Fatalf("providers stored after a refusal: %d", len(ps))
		}
		var reg map[string]any
		if st := h.do("POST", "/mcp/clients", map[string]any{"mcp_server_url": f.url(), "client_id": "machine", "client_secret": "machine-secret",
			"token_endpoint_auth_method": "client_secret_basic"}, &reg); st != 200 || reg["issuer"] != f.srv.URL || reg["client_secret"] != nil {
			t.Fatalf("pre-registration: %d %v", st, reg)
		}
		var out consentResp
		if st := h.do("POST", "/auth/consent-spec", body, &out); st != 200 || out.AuthURL != "" || out.ConnectionID == "" {
			t.Fatalf("machine connection: %d %+v", st, out)
		}
		if h.status(out.ConnectionID) != storage.StatusActive {
			t.Fatalf("status %s", h.status(out.ConnectionID))
		}
		f.mu.Lock()
		form, auth := f.tokenForms[0], f.tokenAuth[0]
		f.mu.Unlock()
		if form.Get("grant_type") != "client_credentials" || form.Get("resource") != f.url() || !strings.HasPrefix(auth, "Basic ") {
			t.Fatalf("token request %v %q", form, auth)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if st := h.do("GET", "/connections/"+out.ConnectionID+"/token", nil, &tok); st != 200 || tok.AccessToken != "mcp-cc-1" {
			t.Fatalf("token: %d %+v", st, tok)
		}
		// Past its expiry, concurrent readers share one new request.
		h.clock.Advance(15 * time.Minute)
		var wg sync.WaitGroup
		got := make([]string, 6)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var tk struct {
					AccessToken string `json:"access_token"`
				}
				h.do("GET", "/connections/"+out.ConnectionID+"/token", nil, &tk)
				got[i] = tk.AccessToken
			}()
		}
		wg.Wait()
		for _, g := range got {
			if g != "mcp-cc-2" {
				t.Fatalf("readers got %q, want the one re-requested token", got)
			}
		}
		f.mu.Lock()
		n := len(f.tokenForms)
		f.mu.Unlock()
		if n != 2 {
			t.Fatalf("%d token requests, want 2 (one per expiry)", n)
		}
	})
}

// TestMCPStepUpLoopRefused: a server that answers insufficient_scope for
// scopes the connection already holds would make every step-up loop; the
// broker refuses the step-up and the connection, its token and the
// authorization server are left alone.
func TestMCPStepUpLoopRefused(t *testing.T) {
	f := newFakeMCP(t)
	h := newHarness(t, "sqlite:"+t.TempDir()+"/dromos.db")
	c, st, env := h.mcpConsent(f.url(), nil)
	if st != 200 {
		t.Fatalf("consent: %d %+v", st, env)
	}
	q := func() url.Values {
		u, _ := url.Parse(h.visitStart(c.AuthURL).Header.Get("Location"))
		return u.Query()
	}()
	h.callback(url.Values{"state": {q.Get("state")}, "code": {"c"}})
	before, tokBefore, err := h.store.GetConnectionToken(context.Background(), c.ConnectionID)
	if err != nil || before.Status != storage.StatusActive {
		t.Fatalf("connection %+v %v", before, err)
	}
	f.mu.Lock()
	authz := len(f.authorizes)
	f.mu.Unlock()
	var out envelope
	st = h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "user_id": "u-1", "mcp_server_url": f.url(),
		"connection_id": c.ConnectionID, "scopes": []string{"tools:read"}, "return_url": "https://app.example.com/done"}, &out)
	if st != http.StatusBadRequest || out.Code != mcp.CodeStepUpLoop {
		t.Fatalf("looping step-up: %d %+v", st, out)
	}
	after, tokAfter, err := h.store.GetConnectionToken(context.Background(), c.ConnectionID)
	if err != nil || after.Status != storage.StatusActive || after.Version != before.Version || string(tokAfter.Ciphertext) != string(tokBefore.Ciphertext) {
		t.Fatalf("connection changed: %+v -> %+v (%v)", before, after, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.authorizes) != authz {
		t.Fatal("a new authorization request was made")
	}
}
