package broker_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// signingIssuer is a minimal OpenID provider: discovery, JWKS and a token
// endpoint whose id_token carries the claims the test sets.
type signingIssuer struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	claims map[string]any
}

func newSigningIssuer(t *testing.T) *signingIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &signingIssuer{key: key}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": s.srv.URL, "authorization_endpoint": s.srv.URL + "/authorize",
				"token_endpoint": s.srv.URL + "/token", "jwks_uri": s.srv.URL + "/jwks", "response_types_supported": []string{"code"},
				"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/jwks":
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]any{{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
		case "/token":
			s.mu.Lock()
			claims := s.claims
			s.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
				"id_token": s.sign(t, claims)})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *signingIssuer) sign(t *testing.T, claims map[string]any) string {
	head, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	body, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Error(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// An e-mail address the provider does not vouch for is not recorded with
// the connection: anyone can type one into their profile.
func TestUnverifiedEmailIsNotRecorded(t *testing.T) {
	for verified, want := range map[bool]string{true: "ada@example.com", false: ""} {
		h := newHarness(t, sqliteURL(t))
		iss := newSigningIssuer(t)
		h.registerProvider(map[string]any{"name": "signing", "issuer": iss.srv.URL, "enable_discovery": true,
			"client_id": "cid", "client_secret": "secret"})
		c := h.consent("signing", []string{"openid", "email"}, returnURL)
		pu, _ := url.Parse(c.ProviderURL)
		now := h.clock.Now()
		iss.mu.Lock()
		iss.claims = map[string]any{"iss": iss.srv.URL, "sub": "user-1", "aud": "cid", "nonce": pu.Query().Get("nonce"),
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "email": "ada@example.com", "email_verified": verified}
		iss.mu.Unlock()
		if loc := h.callback(url.Values{"state": {c.State}, "code": {"c"}}).Header.Get("Location"); loc == "" {
			t.Fatal("no redirect")
		}
		conn, err := h.store.GetConnection(context.Background(), c.ConnectionID)
		if err != nil || conn.Subject != "user-1" || conn.Email != want {
			t.Fatalf("email_verified=%v: subject %q email %q (%v), want email %q", verified, conn.Subject, conn.Email, err, want)
		}
	}
}
