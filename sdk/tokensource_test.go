package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTokenSourceCaches(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		lifetime time.Duration // 0: the token has no expiry
		fresh    time.Duration // still served from the cache at this age
		stale    time.Duration // fetched again at this age
	}{
		{"hour-long token is kept until 30 s before expiry", time.Hour, time.Hour - 31*time.Second, time.Hour - 30*time.Second},
		{"short token is kept for half its life", 20 * time.Second, 9 * time.Second, 10 * time.Second},
		{"token without expiry is kept a minute", 0, 59 * time.Second, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clk *fakeClock
			var n atomic.Int32
			f := newFakeGateway(t, map[string]http.HandlerFunc{
				"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
					var exp time.Time
					if tc.lifetime > 0 {
						exp = clk.now().Add(tc.lifetime)
					}
					writeJSON(w, 200, tokenAnswer(fmt.Sprintf("tok-%d", n.Add(1)), exp))
				},
			})
			c, clock, _ := testClient(t, f)
			clk = clock
			clk.t = start
			ts := c.TokenSource(context.Background(), testID)
			get := func() string {
				t.Helper()
				tok, err := ts.Token()
				if err != nil {
					t.Fatal(err)
				}
				return tok.AccessToken
			}
			for range 10 {
				if got := get(); got != "tok-1" {
					t.Fatalf("token %q", got)
				}
			}
			clk.advance(tc.fresh)
			if got := get(); got != "tok-1" || f.calls("GET /v1/token/{id}") != 1 {
				t.Fatalf("at %v: token %q after %d gateway calls", tc.fresh, got, f.calls("GET /v1/token/{id}"))
			}
			clk.advance(tc.stale - tc.fresh)
			if got := get(); got != "tok-2" || f.calls("GET /v1/token/{id}") != 2 {
				t.Fatalf("at %v: token %q after %d gateway calls", tc.stale, got, f.calls("GET /v1/token/{id}"))
			}
		})
	}
}

func TestTokenSourceSharesOneFetch(t *testing.T) {
	release := make(chan struct{})
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
			<-release
			writeJSON(w, 200, tokenAnswer("shared", time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)))
		},
	})
	c, _, _ := testClient(t, f)
	ts := c.TokenSource(context.Background(), testID)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token()
			if err == nil && tok.AccessToken != "shared" {
				err = fmt.Errorf("token %q", tok.AccessToken)
			}
			errs <- err
		}()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.calls("GET /v1/token/{id}"); n != 1 {
		t.Fatalf("%d gateway calls for 16 concurrent callers", n)
	}
}

func TestTokenSourceErrors(t *testing.T) {
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, 409, "reauth_required", "connection is revoked: the user must connect again")
		},
	})
	c, _, _ := testClient(t, f)
	ts := c.TokenSource(context.Background(), testID)
	_, err := ts.Token()
	if !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("err = %v", err)
	}
	// A failed fetch is not cached: the next call asks again.
	if _, err := ts.Token(); err == nil {
		t.Fatal("second call succeeded")
	}
	if n := f.calls("GET /v1/token/{id}"); n != 2 {
		t.Fatalf("%d calls", n)
	}
}

// BenchmarkTokenSourceCached is the cost every API request pays for its
// token while the cache is fresh.
func BenchmarkTokenSourceCached(b *testing.B) {
	srv := httptestServer(b, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, tokenAnswer("cached", time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)))
	})
	c, err := New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	c.now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	ts := c.TokenSource(context.Background(), testID)
	if _, err := ts.Token(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
}
