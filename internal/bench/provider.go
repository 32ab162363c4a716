package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fake provider conventions. The benchmark chooses the authorization code
// it hands the broker's callback, so the code itself tells the provider how
// to answer.
const (
	fakeClientID     = "dromos-bench"
	stormCodePrefix  = "storm-" // exchanged for a token that expires in stormLifetime
	stormLifetime    = time.Second
	refreshedPrefix  = "refreshed-" // access tokens issued by a refresh
	fakeScope        = "read write"
	longLifetimeSecs = 3600
)

// fakeProvider is an OAuth 2.0 authorization server with static endpoints:
// /authorize is never visited (the benchmark plays the browser), /token
// answers authorization_code and refresh_token grants and counts refreshes
// per refresh token, that is per connection.
type fakeProvider struct {
	srv          *httptest.Server
	secret       string
	refreshDelay time.Duration

	issued   atomic.Int64
	mu       sync.Mutex
	perToken map[string]int
	// observe, when set, sees the refresh token of every refresh grant as
	// it arrives (the scale part classifies the calls).
	observe func(refreshToken string)
}

func newFakeProvider(secret string, refreshDelay time.Duration) *fakeProvider {
	p := &fakeProvider{secret: secret, refreshDelay: refreshDelay, perToken: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the benchmark calls the callback itself", http.StatusNotFound)
	})
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /api/small", apiHandler)
	p.srv = httptest.NewServer(mux)
	return p
}

func (p *fakeProvider) close()           { p.srv.Close() }
func (p *fakeProvider) authURL() string  { return p.srv.URL + "/authorize" }
func (p *fakeProvider) tokenURL() string { return p.srv.URL + "/token" }

// refreshesOf is how many refresh grants the connection whose code was code
// has made.
func (p *fakeProvider) refreshesOf(code string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.perToken[refreshTokenFor(code)]
}

func refreshTokenFor(code string) string { return "rt-" + code }

func (p *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if id != fakeClientID || secret != p.secret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		code := r.PostFormValue("code")
		if code == "" || r.PostFormValue("code_verifier") == "" || r.PostFormValue("redirect_uri") == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		life := longLifetimeSecs
		if strings.HasPrefix(code, stormCodePrefix) {
			// Expired by the time the storm reads it (the storm waits the
			// second out): the first read must refresh.
			life = int(stormLifetime / time.Second)
		}
		p.answer(w, "", life, refreshTokenFor(code))
	case "refresh_token":
		rt := r.PostFormValue("refresh_token")
		if !strings.HasPrefix(rt, "rt-") {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		p.mu.Lock()
		p.perToken[rt]++
		p.mu.Unlock()
		if p.observe != nil {
			p.observe(rt)
		}
		if p.refreshDelay > 0 {
			t := time.NewTimer(p.refreshDelay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		// No refresh_token in the answer: the broker keeps the old one.
		p.answer(w, refreshedPrefix, longLifetimeSecs, "")
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

func (p *fakeProvider) answer(w http.ResponseWriter, prefix string, life int, refreshToken string) {
	body := map[string]any{
		// Fixed width, about the size of a real opaque access token.
		"access_token": fmt.Sprintf("%sat-%040d", prefix, p.issued.Add(1)),
		"token_type":   "Bearer",
		"expires_in":   life,
		"scope":        fakeScope,
	}
	if refreshToken != "" {
		body["refresh_token"] = refreshToken
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
