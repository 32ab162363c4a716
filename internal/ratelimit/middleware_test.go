package ratelimit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/ratelimit"
)

func get(t *testing.T, srv *httptest.Server, client string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-Client", client)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestMiddleware(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 20.0/60, 20, ratelimit.Options{Now: c.Now})
	var served int
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		w.WriteHeader(http.StatusNoContent)
	})
	key := func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	srv := httptest.NewServer(ratelimit.Middleware(l, key, nil)(next))
	defer srv.Close()

	for i := range 20 {
		if resp := get(t, srv, "a"); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("request %d: %d", i+1, resp.StatusCode)
		}
	}
	resp := get(t, srv, "a")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("21st request: %d, want 429", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "3" {
		t.Fatalf("Retry-After = %q, want 3", got)
	}
	var body struct{ Code, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Code != "rate_limited" {
		t.Fatalf("body %+v, %v", body, err)
	}
	if served != 20 {
		t.Fatalf("handler ran %d times, want 20: a refused request reached it", served)
	}
	if resp := get(t, srv, "b"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("another client limited too: %d", resp.StatusCode)
	}
	c.Advance(3 * time.Second)
	if resp := get(t, srv, "a"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after Retry-After: %d", resp.StatusCode)
	}
}

func TestMiddlewareCustomOnLimited(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 1000, 1, ratelimit.Options{Now: c.Now})
	onLimited := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "slow down; retry in "+w.Header().Get("Retry-After"))
	})
	h := ratelimit.Middleware(l, func(*http.Request) string { return "k" }, onLimited)(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get(t, srv, "")
	resp := get(t, srv, "")
	b, _ := io.ReadAll(resp.Body)
	// 1ms to the next token is still announced as one second, never 0.
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.HasSuffix(string(b), "retry in 1") {
		t.Fatalf("%d %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	cases := []struct {
		name string
		in   time.Duration
		want int64
	}{
		{"zero", 0, 1},
		{"negative", -time.Second, 1},
		{"a nanosecond", time.Nanosecond, 1},
		{"one second", time.Second, 1},
		{"just over", time.Second + time.Millisecond, 2},
		{"minutes", 3*time.Minute + 100*time.Millisecond, 181},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ratelimit.RetryAfterSeconds(tc.in); got != tc.want {
				t.Fatalf("RetryAfterSeconds(%v) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}
