package faults_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// refreshMode is how the fake provider answers refresh_token grants.
type refreshMode int

const (
	refreshOK      refreshMode = iota
	refreshFail500             // 500 with a non-OAuth body
	refreshGarbage             // 200 with a body that is not a token response
)

// providerBehaviour is what the fake provider does; tests switch it while
// brokers talk to it.
type providerBehaviour struct {
	codeTTL       int           // expires_in of code exchanges
	refreshTTL    int           // expires_in of refreshes
	exchangeDelay time.Duration // before answering a code exchange
	refreshDelay  time.Duration // before answering a refresh
	refresh       refreshMode
	// rotate: every refresh issues a new refresh token and the old one
	// stops working (invalid_grant on reuse), as Microsoft, Okta or Auth0
	// do. A request whose caller went away before the answer was written
	// consumes nothing: the provider never completed it.
	rotate bool
	// revocationDown: the revocation endpoint answers 503.
	revocationDown bool
}

// fakeProvider is an OAuth 2.0 token endpoint in the test process. Its
// tokens carry a random prefix, so a leak into a log can be searched for.
type fakeProvider struct {
	srv    *httptest.Server
	prefix string

	mu     sync.Mutex
	b      providerBehaviour
	seq    int
	valid  map[string]bool // refresh tokens the provider accepts
	issued []string        // every access and refresh token issued
	// presented counts, per refresh token, the refresh grants that
	// carried it.
	presented map[string]int

	exchanges       atomic.Int64 // authorization_code grants received
	refreshes       atomic.Int64 // refresh_token grants received
	refreshInFlight atomic.Int64
	exchInFlight    atomic.Int64
	aborted         atomic.Int64 // requests whose caller went away while delayed
	reused          atomic.Int64 // refreshes with a consumed or unknown refresh token

	revocationsRefused atomic.Int64 // revocation requests answered 503
	// revoked counts, per token, the revocations the provider performed.
	revoked map[string]int
}

func newFakeProvider(t *testing.T, b providerBehaviour) *fakeProvider {
	t.Helper()
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	p := &fakeProvider{prefix: "flt" + hex.EncodeToString(r[:]), b: b, valid: map[string]bool{}, presented: map[string]int{}, revoked: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, _ *http.Request) {
		// The tests finish consent without a browser; a person would see this.
		_, _ = io.WriteString(w, "consent page")
	})
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /revoke", p.revoke)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// set changes the behaviour under the lock.
func (p *fakeProvider) set(f func(b *providerBehaviour)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.b)
}

func (p *fakeProvider) behaviour() providerBehaviour {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b
}

// secrets returns every token the provider issued.
func (p *fakeProvider) secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

// refreshedTwice is how many refresh tokens were presented in more than
// one refresh grant that reached the point of answering.
func (p *fakeProvider) refreshedTwice() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.presented {
		if c > 1 {
			n++
		}
	}
	return n
}

// lastAccessToken is the access token of the most recent grant.
func (p *fakeProvider) lastAccessToken() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%s-at-%d", p.prefix, p.seq)
}

// profile is the broker registration of this provider under name.
func (p *fakeProvider) profile(name string) map[string]any {
	return map[string]any{
		"name": name, "auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token",
		"client_id": "faults-client", "client_secret": "faults-client-secret", "scopes": []string{"read"},
		"token_endpoint_auth_method": "client_secret_post",
	}
}

// wait sleeps d unless the caller hangs up first; it reports whether the
// answer should still be written.
func (p *fakeProvider) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		p.aborted.Add(1)
		return false
	}
}

func (p *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("client_id") != "faults-client" || r.PostFormValue("client_secret") != "faults-client-secret" {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	b := p.behaviour()
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		p.exchanges.Add(1)
		p.exchInFlight.Add(1)
		defer p.exchInFlight.Add(-1)
		if r.PostFormValue("code") == "" || r.PostFormValue("code_verifier") == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		if p.wait(r, b.exchangeDelay) {
			p.issue(w, b.codeTTL, "")
		}
	case "refresh_token":
		p.refreshes.Add(1)
		p.refreshInFlight.Add(1)
		defer p.refreshInFlight.Add(-1)
		if !p.wait(r, b.refreshDelay) {
			return
		}
		switch b.refresh {
		case refreshFail500:
			http.Error(w, "upstream exploded", http.StatusInternalServerError)
			return
		case refreshGarbage:
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>maintenance</body></html>")
			return
		}
		rt := r.PostFormValue("refresh_token")
		p.mu.Lock()
		p.presented[rt]++
		ok := p.valid[rt]
		if b.rotate {
			delete(p.valid, rt)
		}
		p.mu.Unlock()
		if !ok {
			p.reused.Add(1)
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		keep := rt
		if b.rotate {
			keep = ""
		}
		p.issue(w, b.refreshTTL, keep)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// issue answers a new token set; keepRefresh, when set, is sent back as the
// refresh token instead of a new one.
func (p *fakeProvider) issue(w http.ResponseWriter, ttl int, keepRefresh string) {
	p.mu.Lock()
	p.seq++
	at := fmt.Sprintf("%s-at-%d", p.prefix, p.seq)
	rt := keepRefresh
	if rt == "" {
		rt = fmt.Sprintf("%s-rt-%d", p.prefix, p.seq)
		p.valid[rt] = true
	}
	p.issued = append(p.issued, at, rt)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": ttl, "refresh_token": rt, "scope": "read",
	})
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// revoke is an RFC 7009 endpoint: a revoked refresh token stops working.
func (p *fakeProvider) revoke(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("client_id") != "faults-client" || r.PostFormValue("client_secret") != "faults-client-secret" {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if p.behaviour().revocationDown {
		p.revocationsRefused.Add(1)
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	tok := r.PostFormValue("token")
	p.mu.Lock()
	p.revoked[tok]++
	delete(p.valid, tok)
	p.mu.Unlock()
}

// revocations returns how many times each token was revoked.
func (p *fakeProvider) revocations() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.revoked))
	for k, v := range p.revoked {
		out[k] = v
	}
	return out
}

// lastRefreshToken is the refresh token of the most recent grant.
func (p *fakeProvider) lastRefreshToken() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%s-rt-%d", p.prefix, p.seq)
}
