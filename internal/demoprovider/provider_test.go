package demoprovider

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestNewRejectsBadOptions(t *testing.T) {
	smallKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	valid := func() Options {
		return Options{
			Issuer:       "http://127.0.0.1:8080/demo",
			ClientID:     "c",
			ClientSecret: "s",
			RedirectURIs: []string{"http://127.0.0.1:8080/auth/callback"},
			SigningKey:   testKey(),
		}
	}
	tests := []struct {
		name string
		mod  func(*Options)
	}{
		{"empty issuer", func(o *Options) { o.Issuer = "" }},
		{"relative issuer", func(o *Options) { o.Issuer = "/demo" }},
		{"non-http issuer", func(o *Options) { o.Issuer = "ftp://example.com/demo" }},
		{"issuer with query", func(o *Options) { o.Issuer = "http://127.0.0.1/demo?x=1" }},
		{"issuer with fragment", func(o *Options) { o.Issuer = "http://127.0.0.1/demo#x" }},
		{"issuer with user info", func(o *Options) { o.Issuer = "http://u:p@127.0.0.1/demo" }},
		{"no client id", func(o *Options) { o.ClientID = "" }},
		{"no client secret", func(o *Options) { o.ClientSecret = "" }},
		{"no redirect URIs", func(o *Options) { o.RedirectURIs = nil }},
		{"relative redirect URI", func(o *Options) { o.RedirectURIs = []string{"/cb"} }},
		{"redirect URI with fragment", func(o *Options) { o.RedirectURIs = []string{"http://127.0.0.1/cb#f"} }},
		{"negative TTL", func(o *Options) { o.CodeTTL = -1 }},
		{"1024-bit key", func(o *Options) { o.SigningKey = smallKey }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.mod(&o)
			if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("New: got %v, want ErrInvalidOptions", err)
			}
		})
	}
	if _, err := New(valid()); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

func TestNewGeneratesKeyWhenNil(t *testing.T) {
	p, err := New(Options{
		Issuer:       "http://127.0.0.1:8080/demo/",
		ClientID:     "c",
		ClientSecret: "s",
		RedirectURIs: []string{"http://127.0.0.1:8080/cb"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.keys.pub.N.BitLen(); got != 2048 {
		t.Errorf("generated key has %d bits, want 2048", got)
	}
	if p.Issuer() != "http://127.0.0.1:8080/demo" {
		t.Errorf("Issuer() = %q, want the trailing slash trimmed", p.Issuer())
	}
}

func TestDiscoveryDocument(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.raw.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	list := func(vs ...string) []any {
		out := make([]any, len(vs))
		for i, v := range vs {
			out[i] = v
		}
		return out
	}
	want := map[string]any{
		"issuer":                                         e.issuer,
		"authorization_endpoint":                         e.issuer + "/authorize",
		"token_endpoint":                                 e.issuer + "/token",
		"jwks_uri":                                       e.issuer + "/jwks",
		"userinfo_endpoint":                              e.issuer + "/userinfo",
		"revocation_endpoint":                            e.issuer + "/revoke",
		"response_types_supported":                       list("code"),
		"subject_types_supported":                        list("public"),
		"id_token_signing_alg_values_supported":          list("RS256"),
		"scopes_supported":                               list("openid", "profile", "email", "offline_access", "demo.read", "demo.write"),
		"token_endpoint_auth_methods_supported":          list("client_secret_basic", "client_secret_post"),
		"code_challenge_methods_supported":               list("S256"),
		"grant_types_supported":                          list("authorization_code", "refresh_token"),
		"authorization_response_iss_parameter_supported": true,
	}
	for field, w := range want {
		t.Run(field, func(t *testing.T) {
			if got := doc[field]; !reflect.DeepEqual(got, w) {
				t.Errorf("%s = %v, want %v", field, got, w)
			}
		})
	}
}

func TestJWKSPublishesSigningKeyWithThumbprintKid(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.raw.Get(e.issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if !k.IsPublic() {
		t.Fatal("JWKS publishes private key material")
	}
	pub, ok := k.Key.(*rsa.PublicKey)
	if !ok || !pub.Equal(&testKey().PublicKey) {
		t.Fatalf("JWKS key is %T, not the signing key", k.Key)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(tp); k.KeyID != want {
		t.Errorf("kid = %q, want RFC 7638 thumbprint %q", k.KeyID, want)
	}
	if k.Algorithm != "RS256" || k.Use != "sig" {
		t.Errorf("alg %q use %q, want RS256 sig", k.Algorithm, k.Use)
	}
}

func TestUnknownMethodsAndPaths(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"GET token", http.MethodGet, "/token", http.StatusMethodNotAllowed},
		{"GET revoke", http.MethodGet, "/revoke", http.StatusMethodNotAllowed},
		{"POST jwks", http.MethodPost, "/jwks", http.StatusMethodNotAllowed},
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.issuer+tc.path, nil)
			resp, err := e.raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
