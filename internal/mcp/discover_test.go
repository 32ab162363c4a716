package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/netguard"
)

// fakeServer is an MCP server and its authorization server on one
// listener, with every document switchable per test.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	// docs maps a path to the JSON it serves (a func of the base URL).
	docs      map[string]func(base string) any
	challenge func(base string) string
	hits      []string
	register  http.HandlerFunc
	// openInitialize lets initialize through unauthenticated.
	openInitialize bool
}

func newFake(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, docs: map[string]func(string) any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits = append(f.hits, r.Method+" "+r.URL.Path)
	doc, ok := f.docs[r.URL.Path]
	challenge, register := f.challenge, f.register
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/mcp":
		f.mu.Lock()
		open := f.openInitialize
		f.mu.Unlock()
		if b, _ := io.ReadAll(r.Body); open && strings.Contains(string(b), `"initialize"`) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
			return
		}
		if challenge != nil {
			w.Header().Set("WWW-Authenticate", challenge(f.srv.URL))
		}
		w.WriteHeader(http.StatusUnauthorized)
	case r.Method == http.MethodPost && r.URL.Path == "/register" && register != nil:
		register(w, r)
	case ok && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc(f.srv.URL))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeServer) gets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, h := range f.hits {
		if p, ok := strings.CutPrefix(h, "GET "); ok {
			out = append(out, p)
		}
	}
	return out
}

func asMetadata(prefix string) func(string) any {
	return func(base string) any {
		return map[string]any{
			"issuer": base + prefix, "authorization_endpoint": base + prefix + "/authorize", "token_endpoint": base + prefix + "/token",
			"registration_endpoint": base + "/register", "code_challenge_methods_supported": []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"none"},
		}
	}
}

func prm(resourcePath, asPath string, scopes ...string) func(string) any {
	return func(base string) any {
		m := map[string]any{"resource": base + resourcePath, "authorization_servers": []string{base + asPath}}
		if scopes != nil {
			m["scopes_supported"] = scopes
		}
		return m
	}
}

func discoverer() *mcp.Discoverer { return mcp.New(mcp.Options{}) }

func TestDiscoverOrders(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(f *fakeServer)
		wantGets  []string
		wantIss   string
		wantScope []string
	}{
		{
			name: "challenge names metadata; RFC 8414 at root",
			setup: func(f *fakeServer) {
				f.challenge = func(b string) string {
					return `Bearer resource_metadata="` + b + `/.well-known/oauth-protected-resource/mcp", scope="files:read"`
				}
				f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mcp", "", "a", "b")
				f.docs["/.well-known/oauth-authorization-server"] = asMetadata("")
			},
			wantGets:  []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"},
			wantScope: []string{"files:read"},
		},
		{
			name: "path-specific well-known; OpenID at root",
			setup: func(f *fakeServer) {
				f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mcp", "", "a", "b")
				f.docs["/.well-known/openid-configuration"] = asMetadata("")
			},
			wantGets:  []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
			wantScope: []string{"a", "b"},
		},
		{
			name: "root well-known; RFC 8414 with path insertion",
			setup: func(f *fakeServer) {
				f.docs["/.well-known/oauth-protected-resource"] = prm("", "/tenant1")
				f.docs["/.well-known/oauth-authorization-server/tenant1"] = asMetadata("/tenant1")
			},
			wantGets: []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
				"/.well-known/oauth-authorization-server/tenant1"},
			wantIss: "/tenant1",
		},
		{
			name: "custom metadata URL; OpenID with path appended",
			setup: func(f *fakeServer) {
				f.challenge = func(b string) string { return `Bearer resource_metadata="` + b + `/custom/metadata/location.json"` }
				f.docs["/custom/metadata/location.json"] = prm("/mcp", "/tenant1")
				f.docs["/tenant1/.well-known/openid-configuration"] = asMetadata("/tenant1")
			},
			wantGets: []string{"/custom/metadata/location.json", "/.well-known/oauth-authorization-server/tenant1",
				"/.well-known/openid-configuration/tenant1", "/tenant1/.well-known/openid-configuration"},
			wantIss: "/tenant1",
		},
		{
			name: "initialize let through; the ping's challenge counts",
			setup: func(f *fakeServer) {
				f.openInitialize = true
				f.challenge = func(b string) string {
					return `Bearer resource_metadata="` + b + `/.well-known/oauth-protected-resource/mcp", scope="mcp:basic"`
				}
				f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mcp", "", "mcp:basic", "mcp:write")
				f.docs["/.well-known/oauth-authorization-server"] = asMetadata("")
			},
			wantGets:  []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"},
			wantScope: []string{"mcp:basic"},
		},
		{
			name: "2025-03-26 server: metadata at its origin",
			setup: func(f *fakeServer) {
				f.docs["/.well-known/oauth-authorization-server"] = asMetadata("")
			},
			wantGets: []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
				"/.well-known/oauth-authorization-server"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.setup(f)
			d, err := discoverer().Discover(context.Background(), f.srv.URL+"/mcp")
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if got := f.gets(); !slices.Equal(got, tc.wantGets) {
				t.Errorf("fetched %q\nwant    %q", got, tc.wantGets)
			}
			if d.Issuer != f.srv.URL+tc.wantIss {
				t.Errorf("issuer %q, want %q", d.Issuer, f.srv.URL+tc.wantIss)
			}
			if !slices.Equal(d.DefaultScopes(), tc.wantScope) {
				t.Errorf("scopes %q, want %q", d.DefaultScopes(), tc.wantScope)
			}
			if d.Server.TokenEndpoint == "" || d.Resource == "" {
				t.Errorf("incomplete discovery %+v", d)
			}
		})
	}
}

func TestDiscoverDefaultEndpoints(t *testing.T) {
	f := newFake(t)
	d, err := discoverer().Discover(context.Background(), f.srv.URL+"/mcp")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Legacy || !d.DefaultEndpoints || d.Server.AuthorizationEndpoint != f.srv.URL+"/authorize" ||
		d.Server.TokenEndpoint != f.srv.URL+"/token" || d.Server.RegistrationEndpoint != f.srv.URL+"/register" {
		t.Fatalf("fallback = %+v", d)
	}
	if d.Resource != f.srv.URL+"/mcp" {
		t.Fatalf("resource %q", d.Resource)
	}
}

func code(err error) string {
	var e *mcp.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestDiscoverRefusals(t *testing.T) {
	cases := []struct {
		name  string
		setup func(f *fakeServer)
		guard mcp.Guard
		want  string
	}{
		{"resource mismatch", func(f *fakeServer) {
			f.docs["/.well-known/oauth-protected-resource/mcp"] = func(b string) any {
				return map[string]any{"resource": "https://evil.example.com/mcp", "authorization_servers": []string{b}}
			}
			f.docs["/.well-known/oauth-authorization-server"] = asMetadata("")
		}, nil, mcp.CodeResourceMismatch},
		{"sibling path is not the resource", func(f *fakeServer) {
			f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mc", "")
			f.docs["/.well-known/oauth-authorization-server"] = asMetadata("")
		}, nil, mcp.CodeResourceMismatch},
		{"no S256", func(f *fakeServer) {
			f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mcp", "")
			f.docs["/.well-known/oauth-authorization-server"] = func(b string) any {
				m := asMetadata("")(b).(map[string]any)
				m["code_challenge_methods_supported"] = []string{"plain"}
				return m
			}
		}, nil, mcp.CodeNoS256},
		{"no PKCE methods listed", func(f *fakeServer) {
			f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mcp", "")
			f.docs["/.well-known/oauth-authorization-server"] = func(b string) any {
				m := asMetadata("")(b).(map[string]any)
				delete(m, "code_challenge_methods_supported")
				return m
			}
		}, nil, mcp.CodeNoS256},
		{"authorization server at the metadata address", func(f *fakeServer) {
			f.docs["/.well-known/oauth-protected-resource/mcp"] = func(b string) any {
				return map[string]any{"resource": b + "/mcp", "authorization_servers": []string{"http://169.254.169.254/latest"}}
			}
		}, productionLikeGuard, mcp.CodeBlockedAddress},
		{"challenge points at a private address", func(f *fakeServer) {
			f.challenge = func(string) string {
				return `Bearer resource_metadata="http://10.1.2.3/.well-known/oauth-protected-resource"`
			}
		}, productionLikeGuard, mcp.CodeBlockedAddress},
		{"token endpoint at the metadata address", func(f *fakeServer) {
			f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mcp", "")
			f.docs["/.well-known/oauth-authorization-server"] = func(b string) any {
				m := asMetadata("")(b).(map[string]any)
				m["token_endpoint"] = "http://169.254.169.254/token"
				return m
			}
		}, nil, mcp.CodeBlockedAddress},
		{"metadata issuer differs", func(f *fakeServer) {
			f.docs["/.well-known/oauth-protected-resource/mcp"] = prm("/mcp", "")
			f.docs["/.well-known/oauth-authorization-server"] = func(b string) any {
				m := asMetadata("")(b).(map[string]any)
				m["issuer"] = "https://other.example.com"
				return m
			}
		}, nil, mcp.CodeBadMetadata},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.setup(f)
			d := mcp.New(mcp.Options{Guard: tc.guard})
			_, err := d.Discover(context.Background(), f.srv.URL+"/mcp")
			if code(err) != tc.want {
				t.Fatalf("Discover error %v, want code %s", err, tc.want)
			}
			for _, g := range f.gets() {
				if strings.Contains(g, "authorize") {
					t.Fatalf("an authorization request was made: %q", f.gets())
				}
			}
		})
	}
}

// productionLikeGuard lets the test's own loopback server through (it
// stands in for a public host) but judges every other address the way
// production does.
func productionLikeGuard(ctx context.Context, raw string) error {
	if strings.HasPrefix(raw, "http://127.0.0.1:") {
		return nil
	}
	if err := netguard.CheckURL(raw, true); err != nil {
		return err
	}
	host := strings.TrimPrefix(strings.TrimPrefix(raw, "http://"), "https://")
	host, _, _ = strings.Cut(host, "/")
	return netguard.CheckHost(ctx, nil, host)
}

func TestProductionGuardRefusesLoopbackServer(t *testing.T) {
	f := newFake(t)
	d := mcp.New(mcp.Options{Guard: mcp.ProductionGuard(nil)})
	_, err := d.Discover(context.Background(), f.srv.URL+"/mcp")
	if c := code(err); c != mcp.CodeInvalidURL && c != mcp.CodeBlockedAddress {
		t.Fatalf("production discovery of a loopback http server: %v", err)
	}
	if len(f.gets())+len(f.hits) != 0 {
		t.Fatalf("the server was contacted: %q", f.hits)
	}
}

func TestRegister(t *testing.T) {
	cases := []struct {
		name       string
		handler    http.HandlerFunc
		wantCode   string
		wantMethod string
	}{
		{"201 with secret", func(w http.ResponseWriter, r *http.Request) {
			var req mcp.RegistrationRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			if req.TokenEndpointAuthMethod != "client_secret_basic" || len(req.RedirectURIs) != 1 {
				http.Error(w, "bad", 400)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"client_id":"c1","client_secret":"s1","token_endpoint_auth_method":"client_secret_basic"}`))
		}, "", "client_secret_basic"},
		{"public client answer", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"client_id":"c1"}`))
		}, "", "none"},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, mcp.CodeRegistrationFailed, ""},
		{"garbage", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`<html>hello</html>`))
		}, mcp.CodeRegistrationFailed, ""},
		{"no client_id", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"client_secret":"x"}`))
		}, mcp.CodeRegistrationFailed, ""},
		{"method without secret", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"client_id":"c","token_endpoint_auth_method":"client_secret_post"}`))
		}, mcp.CodeRegistrationFailed, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.register = tc.handler
			md := mcp.ServerMetadata{Issuer: f.srv.URL, RegistrationEndpoint: f.srv.URL + "/register",
				TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "none"}}
			c, err := discoverer().Register(context.Background(), md, mcp.RegistrationRequest{ClientName: "x", RedirectURIs: []string{"http://b/cb"}})
			if code(err) != tc.wantCode {
				t.Fatalf("Register = %+v, %v; want code %q", c, err, tc.wantCode)
			}
			if err == nil && c.AuthMethod != tc.wantMethod {
				t.Fatalf("method %q, want %q", c.AuthMethod, tc.wantMethod)
			}
			if err != nil && strings.Contains(err.Error(), "boom") {
				t.Fatalf("remote body in error: %v", err)
			}
		})
	}
}

func TestResourceMatches(t *testing.T) {
	for _, tc := range []struct {
		res, srv string
		want     bool
	}{
		{"https://a.example/mcp", "https://a.example/mcp", true},
		{"https://a.example", "https://a.example/mcp", true},
		{"https://a.example/", "https://a.example/mcp", true},
		{"https://A.example/mcp/", "https://a.example/mcp", true},
		{"https://a.example/mc", "https://a.example/mcp", false},
		{"https://a.example/mcp/x", "https://a.example/mcp", false},
		{"http://a.example/mcp", "https://a.example/mcp", false},
		{"https://a.example:8443/mcp", "https://a.example/mcp", false},
		{"https://evil.example/mcp", "https://a.example/mcp", false},
		{"https://a.example/mcp#x", "https://a.example/mcp", false},
	} {
		if got := mcp.ResourceMatches(tc.res, tc.srv); got != tc.want {
			t.Errorf("ResourceMatches(%q, %q) = %v", tc.res, tc.srv, got)
		}
	}
}
