package broker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProvider is a token endpoint whose answer each test chooses, counting
// the calls that reach it. It stands in for a provider misbehaving in one
// precise way; the happy path is proven against a real OP elsewhere.
type fakeProvider struct {
	srv     *httptest.Server
	calls   atomic.Int64
	mu      sync.Mutex
	respond func(w http.ResponseWriter, r *http.Request)
	revoke  func(r *http.Request)
}

func newFakeProvider(t *testing.T) *fakeProvider {
	f := &fakeProvider{}
	f.respond = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": "fake-access-" + r.PostFormValue("code"), "token_type": "Bearer",
			"expires_in": 3600, "refresh_token": "fake-refresh", "scope": "read",
		})
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/revoke" {
			f.mu.Lock()
			revoke := f.revoke
			f.mu.Unlock()
			if revoke != nil {
				revoke(r)
				return
			}
		}
		if r.URL.Path != "/token" {
			http.NotFound(w, r)
			return
		}
		f.calls.Add(1)
		f.mu.Lock()
		respond := f.respond
		f.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProvider) setResponse(fn func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

func (f *fakeProvider) profile(name string) map[string]any {
	return map[string]any{
		"name": name, "auth_url": f.srv.URL + "/authorize", "token_url": f.srv.URL + "/token",
		"client_id": "fake-client", "client_secret": "fake-secret-value", "scopes": []string{"read"},
		"token_endpoint_auth_method": "client_secret_post",
	}
}

// slowly delays an answer so concurrent callbacks overlap.
func slowly(d time.Duration, next func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(d)
		next(w, r)
	}
}
