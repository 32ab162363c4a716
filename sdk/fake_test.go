package sdk

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeGateway is an httptest gateway whose routes the test scripts. It
// counts the calls per route pattern.
type fakeGateway struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   map[string]int
}

func newFakeGateway(t *testing.T, routes map[string]http.HandlerFunc) *fakeGateway {
	t.Helper()
	f := &fakeGateway{n: map[string]int{}}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			f.n[pattern]++
			f.mu.Unlock()
			h(w, r)
		})
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// httptestServer is a loopback server closed when tb ends.
func httptestServer(tb testing.TB, h http.HandlerFunc) *httptest.Server {
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	return s
}

func (f *fakeGateway) calls(pattern string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[pattern]
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sleeps records the pauses a client asked for instead of taking them.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testClient is a client of f with a fixed clock, recorded sleeps and a
// jitter that always picks the top of the range minus one.
func testClient(t *testing.T, f *fakeGateway, opts ...Option) (*Client, *fakeClock, *sleeps) {
	t.Helper()
	c, err := New(f.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := &sleeps{}
	c.now, c.sleep, c.jitter = clk.now, s.sleep, func(n int64) int64 { return n - 1 }
	return c, clk, s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

// tokenAnswer is a gateway token body for access token at, expiring at exp
// (no expiry when zero).
func tokenAnswer(at string, exp time.Time) map[string]any {
	m := map[string]any{"access_token": at, "token_type": "Bearer", "scope": "openid email", "provider": "demo",
		"id_token": "idtok-" + at}
	if !exp.IsZero() {
		m["expires_at"] = exp.UTC().Format(time.RFC3339)
		m["expires_in"] = 3600
	}
	return m
}

const testID = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
