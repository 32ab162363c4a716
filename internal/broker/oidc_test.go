package broker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
)

// fakeIssuer serves a discovery document (which can be taken down or made
// to lie) in front of a rotating token endpoint.
type fakeIssuer struct {
	srv        *httptest.Server
	tokens     *rotatingProvider
	down       atomic.Bool
	issParam   bool
	claimedIss string
	discovery  atomic.Int64
}

func newFakeIssuer(t *testing.T, issParam bool) *fakeIssuer {
	f := &fakeIssuer{tokens: newRotatingProvider(t), issParam: issParam}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			f.discovery.Add(1)
			if f.down.Load() {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
				return
			}
			iss := f.srv.URL
			if f.claimedIss != "" {
				iss = f.claimedIss
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer": iss, "authorization_endpoint": f.srv.URL + "/authorize",
				"token_endpoint": f.tokens.srv.URL + "/token", "jwks_uri": f.srv.URL + "/jwks",
				"response_types_supported":                       []string{"code"},
				"authorization_response_iss_parameter_supported": f.issParam,
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) profile(name string) map[string]any {
	return map[string]any{"name": name, "issuer": f.srv.URL, "enable_discovery": true,
		"client_id": "c", "client_secret": "s", "scopes": []string{"read"}}
}

func TestDiscoveryOutageAfterFirstSuccess(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	iss := newFakeIssuer(t, false)
	h.registerProvider(iss.profile("disco"))
	iss.down.Store(true)
	c := h.consent("disco", nil, returnURL)
	au, _ := url.Parse(c.ProviderURL)
	if au.Host != mustHost(iss.srv.URL) || au.Path != "/authorize" {
		t.Fatalf("provider URL not from the cached document: %s", c.ProviderURL)
	}
	if resp := h.callback(url.Values{"state": {c.State}, "code": {"c"}}); resp.StatusCode != 302 {
		t.Fatalf("callback during outage: %d", resp.StatusCode)
	}
	if h.status(c.ConnectionID) != storage.StatusActive {
		t.Fatal("flow did not complete from the cached document")
	}
}

func TestProviderRegisteredWhileIssuerDownIsReported(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	iss := newFakeIssuer(t, false)
	iss.down.Store(true)
	var env envelope
	if st := h.do("POST", "/providers", map[string]any{"profile": iss.profile("down")}, &env); st != 400 || env.Code != "discovery_failed" {
		t.Fatalf("got %d %+v", st, env)
	}
	// The answer names the problem, not the broker's internal error text.
	if strings.Contains(env.Message, "127.0.0.1") || strings.Contains(env.Message, "http") {
		t.Fatalf("discovery failure answer carries internal detail: %q", env.Message)
	}
	var list struct {
		Providers []any `json:"providers"`
	}
	h.do("GET", "/providers", nil, &list)
	if len(list.Providers) != 0 {
		t.Fatal("half-configured provider stored")
	}
	// An issuer whose document names another issuer is refused too.
	liar := newFakeIssuer(t, false)
	liar.claimedIss = "https://accounts.example.test"
	if st := h.do("POST", "/providers", map[string]any{"profile": liar.profile("liar")}, &env); st != 400 || env.Code != "discovery_failed" {
		t.Fatalf("mismatched issuer: %d %+v", st, env)
	}
}

// TestMixUpDefence: with RFC 9207 advertised, a callback must carry the
// provider's iss; a missing or foreign one is refused before any exchange.
func TestMixUpDefence(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		iss := newFakeIssuer(t, true)
		h.registerProvider(iss.profile("strict"))
		for name, q := range map[string]func(c consentResp) url.Values{
			"missing iss": func(c consentResp) url.Values { return url.Values{"state": {c.State}, "code": {"c"}} },
			"foreign iss": func(c consentResp) url.Values {
				return url.Values{"state": {c.State}, "code": {"c"}, "iss": {"https://evil.example.test"}}
			},
		} {
			c := h.consent("strict", nil, returnURL)
			if resp := h.callback(q(c)); resp.StatusCode != 400 {
				t.Fatalf("%s: %d", name, resp.StatusCode)
			}
			if iss.tokens.calls.Load() != 0 || h.status(c.ConnectionID) != storage.StatusPending {
				t.Fatalf("%s: provider called or status changed", name)
			}
			h.assertNoToken(c.ConnectionID)
		}
		c := h.consent("strict", nil, returnURL)
		if resp := h.callback(url.Values{"state": {c.State}, "code": {"c"}, "iss": {iss.srv.URL}}); resp.StatusCode != 302 {
			t.Fatalf("matching iss refused: %d", resp.StatusCode)
		}
		if h.status(c.ConnectionID) != storage.StatusActive {
			t.Fatal("not active")
		}
	})
}

func mustHost(raw string) string {
	u, _ := url.Parse(raw)
	return u.Host
}
