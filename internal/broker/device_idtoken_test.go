package broker_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dromos-dev/dromos/internal/storage"
)

// deviceOP is an OpenID provider with a device authorization endpoint
// (discovered) whose token endpoint answers the first poll with a token
// set carrying the id_token claims the test sets.
type deviceOP struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	signer jose.Signer

	mu     sync.Mutex
	claims map[string]any // nil: no id_token in the answer
	polls  int
}

func newDeviceOP(t *testing.T) *deviceOP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	op := &deviceOP{key: key, signer: signer}
	op.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss := op.srv.URL
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
				"token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks", "device_authorization_endpoint": iss + "/device"})
		case "/jwks":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		case "/device":
			_ = json.NewEncoder(w).Encode(map[string]any{"device_code": "op-device-code-0123456789abcdef", "user_code": "ABCD-EFGH",
				"verification_uri": iss + "/activate", "expires_in": 600, "interval": 2})
		case "/token":
			op.mu.Lock()
			op.polls++
			claims := op.claims
			op.mu.Unlock()
			body := map[string]any{"access_token": "device-op-access-token", "token_type": "Bearer", "expires_in": 3600}
			if claims != nil {
				raw, _ := json.Marshal(claims)
				obj, err := signer.Sign(raw)
				if err != nil {
					t.Error(err)
				}
				body["id_token"], _ = obj.CompactSerialize()
			}
			_ = json.NewEncoder(w).Encode(body)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(op.srv.Close)
	return op
}

func (op *deviceOP) set(claims map[string]any) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.claims, op.polls = claims, 0
}

// TestDeviceTokenVerification: the token a device poll brings is checked
// like a code exchange's before anything is stored. An openid device
// connection whose id_token is missing, for another audience or from
// another issuer fails with invalid_id_token; one whose verified account
// is not the expected_identity fails with identity_mismatch; in each case
// no token is stored and the grant is not polled again. The same provider
// with a correct id_token and a matching expected_identity turns active,
// so the failures are the checks, not the setup. (A device authorization
// request carries no nonce, so there is none to check.)
func TestDeviceTokenVerification(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		op := newDeviceOP(t)
		h.registerProvider(map[string]any{"name": "device-op", "auth_mode": "oauth2_device_code", "issuer": op.srv.URL,
			"enable_discovery": true, "client_id": "client-1", "client_secret": "device-op-secret-0123456789",
			"token_endpoint_auth_method": "client_secret_post"})
		now := h.clock.Now()
		claims := func(edit func(map[string]any)) map[string]any {
			c := map[string]any{"iss": op.srv.URL, "sub": "user-1", "aud": "client-1", "exp": now.Add(time.Hour).Unix(),
				"iat": now.Unix(), "email": "ada@example.com", "email_verified": true}
			if edit != nil {
				edit(c)
			}
			return c
		}
		cases := []struct {
			name       string
			scopes     []string
			expected   map[string]any
			claims     map[string]any
			wantStatus storage.ConnectionStatus
			wantReason string
		}{
			{"no id_token", []string{"openid"}, nil, nil, storage.StatusFailed, "invalid_id_token"},
			{"wrong audience", []string{"openid"}, nil, claims(func(c map[string]any) { c["aud"] = "someone-else" }), storage.StatusFailed, "invalid_id_token"},
			{"wrong issuer", []string{"openid"}, nil, claims(func(c map[string]any) { c["iss"] = "https://evil.example.test" }), storage.StatusFailed, "invalid_id_token"},
			{"another sub expected", nil, map[string]any{"sub": "user-2"}, claims(nil), storage.StatusFailed, "identity_mismatch"},
			{"another domain expected", []string{"openid"}, map[string]any{"email_domain": "example.org"}, claims(nil), storage.StatusFailed, "identity_mismatch"},
			{"the expected account", nil, map[string]any{"sub": "user-1", "email": "ada@example.com"}, claims(nil), storage.StatusActive, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				op.set(tc.claims)
				body := map[string]any{"workspace_id": "ws-1", "user_id": "u-1", "provider_name": "device-op",
					"scopes": tc.scopes, "return_url": "https://app.example/back"}
				if tc.expected != nil {
					body["expected_identity"] = tc.expected
				}
				var answer map[string]any
				if st := h.do("POST", "/auth/consent-spec", body, &answer); st != http.StatusOK {
					t.Fatalf("device consent: %d %v", st, answer)
				}
				id := answer["connection_id"].(string)
				if scopes, _ := answer["scopes"].([]any); !containsAny(scopes, "openid") {
					t.Fatalf("scopes %v: openid not asked for", answer["scopes"])
				}
				h.clock.Advance(2 * time.Second)
				if _, err := h.broker.PollDevices(context.Background()); err != nil {
					t.Fatal(err)
				}
				c, err := h.store.GetConnection(context.Background(), id)
				if err != nil || c.Status != tc.wantStatus || c.StatusReason != tc.wantReason {
					t.Fatalf("connection %s (%s), want %s (%s): %v", c.Status, c.StatusReason, tc.wantStatus, tc.wantReason, err)
				}
				if tc.wantStatus == storage.StatusActive {
					if c.Subject != "user-1" {
						t.Fatalf("subject %q", c.Subject)
					}
					var tok map[string]any
					if st := h.do("GET", "/connections/"+id+"/token", nil, &tok); st != 200 || tok["access_token"] != "device-op-access-token" {
						t.Fatalf("token read %d %v", st, tok)
					}
				} else {
					h.assertNoToken(id)
				}
				h.clock.Advance(10 * time.Second)
				if _, err := h.broker.PollDevices(context.Background()); err != nil {
					t.Fatal(err)
				}
				op.mu.Lock()
				polls := op.polls
				op.mu.Unlock()
				if polls != 1 {
					t.Fatalf("provider saw %d polls, want 1", polls)
				}
				if _, err := h.store.GetDeviceGrant(context.Background(), id); err == nil {
					t.Fatal("the grant row outlived its end")
				}
			})
		}
	})
}

func containsAny(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
