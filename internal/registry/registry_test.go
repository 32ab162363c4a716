package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
	"github.com/dromos-dev/dromos/internal/vault"
)

type fixture struct {
	reg    *registry.Registry
	ring   *vault.Keyring
	disco  *discovery.Cache
	prom   *prometheus.Registry
	store  *sqlite.Store
	mux    *http.ServeMux
	events []storage.AuditEvent
	logs   *lockedBuffer
}

func newFixture(t *testing.T, netGuard bool) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dromos.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := vault.NewKeyring(vault.Key{ID: 1, Secret: [vault.KeySize]byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, mux: http.NewServeMux(), ring: ring, prom: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	disco := discovery.New(discovery.Options{HTTPClient: &http.Client{Timeout: 5 * time.Second}, RetryInterval: time.Millisecond})
	f.disco = disco
	f.reg, err = registry.New(registry.Deps{Store: store, Vault: ring, Discovery: disco, NetGuard: netGuard, Registerer: f.prom,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Audit:  func(_ *http.Request, e storage.AuditEvent) { f.events = append(f.events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	f.reg.Routes(func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				httpapi.WriteError(w, r, nil, err)
			}
		})
	})
	return f
}

// lockedBuffer collects the registry's log lines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (f *fixture) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	r := httptest.NewRequest(method, path, &buf)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	out := map[string]any{}
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, w.Body.String())
		}
	}
	return w.Code, out
}

func staticProfile(name string) map[string]any {
	return map[string]any{"name": name, "auth_url": "https://idp.example/authorize", "token_url": "https://idp.example/token",
		"client_id": "cid", "client_secret": "the-client-secret", "scopes": []string{"read"}}
}

func TestRegisterLookupAndSecret(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	st, body := f.do(t, "POST", "/providers", map[string]any{"profile": staticProfile("Acme")})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	if _, ok := body["client_secret"]; ok || body["has_client_secret"] != true {
		t.Fatalf("create answer shows the secret or hides that there is one: %v", body)
	}
	id, _ := body["id"].(string)

	byName, err := f.reg.Lookup(ctx, "", "acme")
	if err != nil || byName.Row.ID != id {
		t.Fatalf("lookup by name: %+v %v", byName.Row, err)
	}
	p, err := f.reg.Lookup(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Row.ClientSecret, []byte("the-client-secret")) || bytes.Contains(p.Row.Config, []byte("the-client-secret")) {
		t.Fatal("client secret stored in the clear")
	}
	sec, err := f.reg.ClientSecret(p)
	if err != nil || sec.Reveal() != "the-client-secret" {
		t.Fatalf("client secret: %q %v", sec.Reveal(), err)
	}
	// The sealed secret is bound to its provider: moved to another id, it
	// does not open.
	moved := p
	moved.Row.ID = "00000000-0000-4000-8000-000000000000"
	if _, err := f.reg.ClientSecret(moved); err == nil {
		t.Fatal("a client secret sealed for one provider opened as another's")
	}

	for _, c := range []struct{ id, name string }{{"not-a-uuid", ""}, {"00000000-0000-4000-8000-000000000000", ""}, {"", "nobody"}} {
		_, err := f.reg.Lookup(ctx, c.id, c.name)
		if he, ok := httpapi.As(err); !ok || he.Status != http.StatusNotFound {
			t.Errorf("lookup %q/%q: %v, want 404", c.id, c.name, err)
		}
	}

	// An update without a secret keeps the stored one.
	upd := staticProfile("acme")
	delete(upd, "client_secret")
	upd["scopes"] = []string{"read", "write"}
	if st, body := f.do(t, "PUT", "/providers/"+id, map[string]any{"profile": upd}); st != http.StatusOK {
		t.Fatalf("update: %d %v", st, body)
	}
	p, _ = f.reg.Lookup(ctx, id, "")
	if sec, err := f.reg.ClientSecret(p); err != nil || sec.Reveal() != "the-client-secret" || len(p.Profile.Scopes) != 2 {
		t.Fatalf("after update: scopes %v, secret %v", p.Profile.Scopes, err)
	}
	if st, _ := f.do(t, "DELETE", "/providers/"+id, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	var types []string
	for _, e := range f.events {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "provider.created,provider.updated,provider.deleted" {
		t.Fatalf("audit events: %s", got)
	}
}

func TestRefusalsLeaveNothingBehind(t *testing.T) {
	f := newFixture(t, true)
	bad := map[string]map[string]any{
		"no profile":      nil,
		"invalid profile": {"name": "x"},
		"plain http (guard)": func() map[string]any {
			p := staticProfile("h")
			p["auth_url"] = "http://idp.example/authorize"
			return p
		}(),
		"loopback (guard)": func() map[string]any {
			p := staticProfile("l")
			p["auth_url"] = "https://127.0.0.1/authorize"
			return p
		}(),
		"template w/o catalog": {"template": "github", "client_id": "c", "client_secret": "s"},
		"broker header": func() map[string]any {
			p := staticProfile("a")
			p["token_request_headers"] = map[string]string{"Authorization": "Basic x"}
			return p
		}(),
	}
	for name, prof := range bad {
		body := map[string]any{}
		if prof != nil {
			body["profile"] = prof
		}
		st, env := f.do(t, "POST", "/providers", body)
		if st != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", name, st, env)
		}
		if env["code"] != "bad_request" || env["message"] == "" {
			t.Errorf("%s: not the error envelope: %v", name, env)
		}
	}
	rows, err := f.store.ListProviders(context.Background())
	if err != nil || len(rows) != 0 || len(f.events) != 0 {
		t.Fatalf("refused registrations left %d rows and %d audit events (%v)", len(rows), len(f.events), err)
	}
}

func TestDiscoveryEndpoints(t *testing.T) {
	up := true
	var iss *httptest.Server
	iss = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up || r.URL.Path != "/.well-known/openid-configuration" {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.URL, "authorization_endpoint": iss.URL + "/authorize", "token_endpoint": iss.URL + "/token",
			"jwks_uri": iss.URL + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
			"authorization_response_iss_parameter_supported": true,
		})
	}))
	defer iss.Close()
	f := newFixture(t, false)
	ctx := context.Background()
	prof := provider.Profile{Name: "oidc", Issuer: iss.URL, EnableDiscovery: true, ClientID: "cid", ClientSecret: "s",
		Scopes: []string{"openid"}, TokenURL: iss.URL + "/token-override"}
	id, err := f.reg.Ensure(ctx, prof)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.reg.Ensure(ctx, prof)
	if err != nil || again != id {
		t.Fatalf("second Ensure: %q %v, want the same id %q", again, err, id)
	}
	p, err := f.reg.Lookup(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := f.reg.Endpoints(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if ends.Auth != iss.URL+"/authorize" || ends.Token != iss.URL+"/token-override" || ends.JWKS != iss.URL+"/jwks" || !ends.IssParameter {
		t.Fatalf("endpoints: %+v (static token_url must win, discovery fill the rest)", ends)
	}

	// A new provider whose issuer is down is refused at registration.
	up = false
	other := prof
	other.Name, other.Issuer = "down", iss.URL+"/tenant"
	if _, err := f.reg.Ensure(ctx, other); err == nil {
		t.Fatal("registered a provider whose discovery fails")
	} else if he, ok := httpapi.As(err); !ok || he.Code != "discovery_failed" {
		t.Fatalf("discovery failure: %v", err)
	}
	if _, err := f.reg.Lookup(ctx, "", "down"); err == nil {
		t.Fatal("the refused provider can be looked up")
	}
	rows, _ := f.store.ListProviders(ctx)
	if len(rows) != 1 {
		t.Fatalf("%d providers stored, want 1", len(rows))
	}
}

// An update that sends the stored client secret (and the users' tokens) to
// another host must carry the secret again; a stolen API key alone cannot
// redirect them.
func TestUpdateMovingEndpointsNeedsTheSecret(t *testing.T) {
	f := newFixture(t, false)
	st, body := f.do(t, "POST", "/providers", map[string]any{"profile": staticProfile("acme")})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	update := func(change func(p map[string]any)) (int, map[string]any) {
		p := staticProfile("acme")
		delete(p, "client_secret")
		change(p)
		return f.do(t, "PUT", "/providers/"+id, map[string]any{"profile": p})
	}
	for name, change := range map[string]func(map[string]any){
		"token_url":      func(p map[string]any) { p["token_url"] = "https://attacker.example/token" },
		"revocation_url": func(p map[string]any) { p["revocation_url"] = "https://attacker.example/revoke" },
		"userinfo_url":   func(p map[string]any) { p["userinfo_url"] = "https://attacker.example/me" },
	} {
		if st, env := update(change); st != http.StatusBadRequest || !strings.Contains(env["message"].(string), name) {
			t.Errorf("moving %s without the secret: %d %v, want 400 naming it", name, st, env)
		}
	}
	if st, env := update(func(p map[string]any) { p["token_url"] = "https://idp.example/oauth/token" }); st != http.StatusOK {
		t.Fatalf("a new path on the same host: %d %v", st, env)
	}
	if st, env := update(func(p map[string]any) {
		p["token_url"], p["client_secret"] = "https://new-idp.example/token", "the-new-secret"
	}); st != http.StatusOK {
		t.Fatalf("moving with the secret given again: %d %v", st, env)
	}
}

// discoveryServer serves one OIDC discovery document per issuer path; the
// token endpoint of each is tokenHost(path) + "/token".
func discoveryServer(t *testing.T, tokenHost func(issuer string) string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	if tokenHost == nil {
		tokenHost = func(iss string) string { return iss }
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		issPath, ok := strings.CutSuffix(r.URL.Path, "/.well-known/openid-configuration")
		if !ok {
			http.NotFound(w, r)
			return
		}
		iss := srv.URL + issPath
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": tokenHost(iss) + "/token",
			"revocation_endpoint": tokenHost(iss) + "/revoke", "userinfo_endpoint": tokenHost(iss) + "/userinfo",
			"jwks_uri": iss + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Moving only the issuer's path to one whose discovery document names a
// token endpoint on another host moves the client secret and the refresh
// tokens there: it needs the secret again, like a new token_url. Any other
// issuer change needs it too.
func TestUpdateMovingTheIssuerNeedsTheSecret(t *testing.T) {
	attacker := httptest.NewServer(http.NotFoundHandler())
	defer attacker.Close()
	var idp *httptest.Server
	idp = discoveryServer(t, func(iss string) string {
		if strings.HasSuffix(iss, "/evil") {
			return attacker.URL
		}
		return idp.URL
	})
	f := newFixture(t, false)
	ctx := context.Background()
	prof := func(issPath string) map[string]any {
		return map[string]any{"name": "oidc", "issuer": idp.URL + issPath, "enable_discovery": true,
			"client_id": "cid", "scopes": []string{"openid"}}
	}
	create := prof("/realm")
	create["client_secret"] = "the-client-secret"
	st, body := f.do(t, "POST", "/providers", map[string]any{"profile": create})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	before, _ := f.store.GetProvider(ctx, id)

	for _, path := range []string{"/evil", "/other-realm"} {
		st, env := f.do(t, "PUT", "/providers/"+id, map[string]any{"profile": prof(path)})
		if st != http.StatusBadRequest || !strings.Contains(env["message"].(string), "client_secret") {
			t.Errorf("issuer moved to %s without the secret: %d %v, want 400", path, st, env)
		}
	}
	after, _ := f.store.GetProvider(ctx, id)
	if !bytes.Equal(before.Config, after.Config) || !bytes.Equal(before.ClientSecret, after.ClientSecret) {
		t.Fatal("a refused update changed the stored provider")
	}
	p, _ := f.reg.Lookup(ctx, id, "")
	if ends, err := f.reg.Endpoints(ctx, p); err != nil || !strings.HasPrefix(ends.Token, idp.URL) {
		t.Fatalf("token endpoint after refused updates: %q %v", ends.Token, err)
	}

	// The same profile again (nothing moves) needs no secret; the operator
	// who gives the secret may move the issuer.
	if st, env := f.do(t, "PUT", "/providers/"+id, map[string]any{"profile": prof("/realm")}); st != http.StatusOK {
		t.Fatalf("unchanged update: %d %v", st, env)
	}
	confirmed := prof("/evil")
	confirmed["client_secret"] = "the-client-secret"
	if st, env := f.do(t, "PUT", "/providers/"+id, map[string]any{"profile": confirmed}); st != http.StatusOK {
		t.Fatalf("issuer moved with the secret: %d %v", st, env)
	}
}

// Outside production a broker still refuses endpoints written as
// cloud-metadata or link-local addresses, while loopback and private ones
// (a local identity provider) stay allowed.
func TestMetadataEndpointsRefusedWithoutTheGuard(t *testing.T) {
	f := newFixture(t, false)
	for field, u := range map[string]string{
		"token_url":      "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"auth_url":       "http://[fd00:ec2::254]/authorize",
		"userinfo_url":   "http://100.100.100.200/latest/meta-data/",
		"revocation_url": "http://169.254.10.10/revoke",
		"jwks_url":       "http://[fe80::1]/jwks",
	} {
		p := staticProfile("meta")
		p[field] = u
		if st, env := f.do(t, "POST", "/providers", map[string]any{"profile": p}); st != http.StatusBadRequest ||
			!strings.Contains(env["message"].(string), field) {
			t.Errorf("%s at %s: %d %v, want 400 naming it", field, u, st, env)
		}
	}
	if rows, _ := f.store.ListProviders(context.Background()); len(rows) != 0 {
		t.Fatalf("%d providers stored after refusals", len(rows))
	}
	p := staticProfile("local")
	p["token_url"] = "http://127.0.0.1:8081/token"
	if st, env := f.do(t, "POST", "/providers", map[string]any{"profile": p}); st != http.StatusCreated {
		t.Fatalf("loopback provider outside production: %d %v", st, env)
	}
}
