package broker_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
)

// TestIDTokenFailuresStoreNothing: an openid consent whose token response
// carries a bad id_token (or none) fails the connection, stores no token,
// and tells the browser invalid_id_token.
func TestIDTokenFailuresStoreNothing(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var issuerURL string
	var mintMu sync.Mutex
	var mintFn func(nonce string) string // set per case
	setMint := func(f func(string) string) { mintMu.Lock(); mintFn = f; mintMu.Unlock() }
	mint := func(n string) string { mintMu.Lock(); f := mintFn; mintMu.Unlock(); return f(n) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuerURL, "authorization_endpoint": issuerURL + "/authorize",
				"token_endpoint": issuerURL + "/token", "jwks_uri": issuerURL + "/jwks"})
		case "/jwks":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		case "/token":
			body := map[string]any{"access_token": "at-secret", "token_type": "Bearer", "expires_in": 3600}
			if id := mint(r.PostFormValue("nonce")); id != "" {
				body["id_token"] = id
			}
			_ = json.NewEncoder(w).Encode(body)
		}
	}))
	defer srv.Close()
	issuerURL = srv.URL

	h := newHarness(t, sqliteURL(t))
	h.registerProvider(map[string]any{"name": "idp", "issuer": issuerURL, "enable_discovery": true, "client_id": "client-1", "client_secret": "s"})
	sign := func(claims map[string]any) string {
		raw, _ := json.Marshal(claims)
		obj, err := signer.Sign(raw)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := obj.CompactSerialize()
		return s
	}
	now := h.clock.Now()
	base := func(nonce string) map[string]any {
		return map[string]any{"iss": issuerURL, "sub": "user-1", "aud": "client-1", "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "nonce": nonce}
	}
	cases := []struct {
		name string
		mint func(nonce string) map[string]any // nil: no id_token at all
	}{
		{"no id_token", nil},
		{"wrong nonce", func(string) map[string]any { return base("not-the-nonce") }},
		{"wrong audience", func(n string) map[string]any { c := base(n); c["aud"] = "someone-else"; return c }},
		{"wrong issuer", func(n string) map[string]any { c := base(n); c["iss"] = "https://evil.example.test"; return c }},
		{"expired", func(n string) map[string]any { c := base(n); c["exp"] = now.Add(-time.Hour).Unix(); return c }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.consent("idp", []string{"openid"}, returnURL)
			p, err := state.NewSigner(stateKey, nil, state.Options{Now: h.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			payload, err := p.Verify(c.State)
			if err != nil {
				t.Fatal(err)
			}
			setMint(func(string) string {
				if tc.mint == nil {
					return ""
				}
				return sign(tc.mint(payload.Nonce))
			})
			resp := h.callback(url.Values{"state": {c.State}, "code": {"c"}})
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != 302 || loc.Query().Get("error") != "invalid_id_token" {
				t.Fatalf("got %d %s", resp.StatusCode, loc)
			}
			if h.status(c.ConnectionID) != storage.StatusFailed {
				t.Fatal("connection not failed")
			}
			h.assertNoToken(c.ConnectionID)
		})
	}
	// The same provider with a correct id_token succeeds, so the failures
	// above are the checks, not the setup.
	c := h.consent("idp", []string{"openid"}, returnURL)
	p, _ := state.NewSigner(stateKey, nil, state.Options{Now: h.clock.Now})
	payload, _ := p.Verify(c.State)
	setMint(func(string) string { return sign(base(payload.Nonce)) })
	if resp := h.callback(url.Values{"state": {c.State}, "code": {"c"}}); resp.StatusCode != 302 || h.status(c.ConnectionID) != storage.StatusActive {
		t.Fatalf("valid id_token refused: %d", resp.StatusCode)
	}
}
