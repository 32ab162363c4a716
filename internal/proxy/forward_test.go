package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/secret"
)

// upstream is a provider API that accepts one token at a time.
type upstream struct {
	srv   *httptest.Server
	mu    sync.Mutex
	valid string
	seen  []*http.Request // headers of every request received
	hits  atomic.Int64
	h     func(w http.ResponseWriter, r *http.Request)
}

func newUpstream(t *testing.T, valid string) *upstream {
	u := &upstream{valid: valid}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(context.Background()))
		valid, h := u.valid, u.h
		u.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+valid {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		if h != nil {
			h(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Set-Cookie", "session=provider-session")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		fmt.Fprintf(w, "%s %s body=%s", r.Method, r.URL.RequestURI(), b)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[len(u.seen)-1]
}

// creds is a connection's token source as the gateway wires it: a cache
// in front of a fake broker whose refresh hands out the upstream's token.
type creds struct {
	cache     *Tokens
	up        *upstream
	current   string
	fixed     string // when set, what a refresh hands out
	reads     atomic.Int64
	refreshes atomic.Int64
}

func (c *creds) call(agent string, tg Target, path, query string) Call {
	fetch := func(context.Context) (Token, error) {
		c.reads.Add(1)
		return Token{Value: secret.String(c.current), ExpiresAt: time.Now().Add(time.Hour)}, nil
	}
	refresh := func(context.Context) (Token, error) {
		c.refreshes.Add(1)
		c.up.mu.Lock()
		c.current = c.up.valid
		c.up.mu.Unlock()
		if c.fixed != "" {
			c.current = c.fixed
		}
		return Token{Value: secret.String(c.current), ExpiresAt: time.Now().Add(time.Hour)}, nil
	}
	return Call{Agent: agent, Target: tg, Path: path, Query: query,
		Token: func(ctx context.Context) (Token, error) { return c.cache.Get(ctx, "k", fetch) },
		Refresh: func(ctx context.Context, stale secret.String) (Token, error) {
			return c.cache.Refresh(ctx, "k", stale, refresh)
		},
		Drop: func() { c.cache.Drop("k") },
	}
}

func serve(f *Forwarder, c Call, method, body string, hdr map[string]string) (*httptest.ResponseRecorder, Record, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://gateway.test/v1/proxy/x/"+c.Path, rd)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	rec, err := f.Serve(w, r, c)
	return w, rec, err
}

func setup(t *testing.T, cfg Config) (*Forwarder, *upstream, *creds, Target) {
	t.Helper()
	up := newUpstream(t, "tok-1")
	tg, err := Resolve("acme", API{BaseURLs: []string{up.srv.URL + "/api"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowPrivate = true
	return New(cfg, Deps{}), up, &creds{cache: NewTokens(TokensOptions{}), up: up, current: "tok-1"}, tg
}

func TestForwardInjectsAndFilters(t *testing.T) {
	f, up, cr, tg := setup(t, Config{})
	w, rec, err := serve(f, cr.call("agent-a", tg, "users/me", "x=1"), "POST", `{"a":1}`, map[string]string{
		"Authorization": "Bearer gateway-key", "X-Api-Key": "gateway-key", "Cookie": "c=1",
		"Proxy-Authorization": "Basic x", "Connection": "X-Custom", "X-Custom": "hop", "X-Dromos-Api-Base": "0",
		"Content-Type": "application/json", "X-Keep": "yes",
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || w.Body.String() != `POST /api/users/me?x=1 body={"a":1}` {
		t.Fatalf("answer %d %q", w.Code, w.Body)
	}
	got := up.last().Header
	if got.Get("Authorization") != "Bearer tok-1" || got.Get("X-Keep") != "yes" || got.Get("Content-Type") != "application/json" {
		t.Fatalf("upstream headers %v", got)
	}
	for _, h := range []string{"X-Api-Key", "Cookie", "Proxy-Authorization", "X-Custom", "X-Dromos-Api-Base"} {
		if v := got.Values(h); len(v) > 0 {
			t.Fatalf("%s reached the provider: %v", h, v)
		}
	}
	for _, h := range []string{"Set-Cookie", "X-Hop"} {
		if v := w.Header().Values(h); len(v) > 0 {
			t.Fatalf("%s reached the agent: %v", h, v)
		}
	}
	if strings.Contains(fmt.Sprint(w.Header(), w.Body.String()), "tok-1") {
		t.Fatal("the token reached the agent")
	}
	if rec.Status != 200 || rec.Host == "" || rec.Path != "/api/users/me" || rec.BytesIn != 7 || rec.BytesOut == 0 {
		t.Fatalf("record %+v", rec)
	}
}

func TestForwardCustomTokenHeader(t *testing.T) {
	f, up, cr, _ := setup(t, Config{})
	up.h = func(w http.ResponseWriter, r *http.Request) {}
	tg, err := Resolve("shop", API{BaseURLs: []string{up.srv.URL}, Auth: &provider.APIAuth{Header: "X-Shop-Token",
		Headers: map[string]string{"Notion-Version": "2025-09-03"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = serve(f, cr.call("a", tg, "x", ""), "GET", "", map[string]string{"X-Shop-Token": "agent-supplied", "Notion-Version": "old"})
	got := up.last().Header
	if got.Get("X-Shop-Token") != "tok-1" || got.Get("Notion-Version") != "2025-09-03" || got.Get("Authorization") != "" {
		t.Fatalf("upstream headers %v", got)
	}
}

func TestForwardRefreshesOnceAfter401(t *testing.T) {
	f, up, cr, tg := setup(t, Config{})
	if w, _, err := serve(f, cr.call("a", tg, "x", ""), "GET", "", nil); err != nil || w.Code != 200 {
		t.Fatalf("first call %v %d", err, w.Code)
	}
	// The provider revokes tok-1 and accepts tok-2 only.
	up.mu.Lock()
	up.valid = "tok-2"
	up.mu.Unlock()
	before := up.hits.Load()
	w, rec, err := serve(f, cr.call("a", tg, "x", ""), "PUT", "payload", nil)
	if err != nil || w.Code != 200 || !rec.Retried || w.Body.String() != "PUT /api/x body=payload" {
		t.Fatalf("after revocation: %v %d %q %+v", err, w.Code, w.Body, rec)
	}
	if n := up.hits.Load() - before; n != 2 || cr.refreshes.Load() != 1 {
		t.Fatalf("upstream hits %d, refreshes %d; want 2 and 1", n, cr.refreshes.Load())
	}
	// Still 401 after the refresh: passed back, no third attempt.
	up.mu.Lock()
	up.valid = "tok-never"
	up.mu.Unlock()
	cr.fixed = "tok-3"
	before = up.hits.Load()
	w, _, err = serve(f, cr.call("a", tg, "x", ""), "GET", "", nil)
	if err != nil || w.Code != 401 || up.hits.Load()-before != 2 {
		t.Fatalf("persistent 401: %v %d, %d upstream hits", err, w.Code, up.hits.Load()-before)
	}
}

func TestForwardLargeBodyIsNotRetried(t *testing.T) {
	f, up, cr, tg := setup(t, Config{MaxReplayBody: 8})
	up.mu.Lock()
	up.valid = "tok-2"
	up.mu.Unlock()
	w, rec, err := serve(f, cr.call("a", tg, "x", ""), "POST", strings.Repeat("b", 100), nil)
	if err != nil || w.Code != 401 || rec.Retried || up.hits.Load() != 1 || cr.refreshes.Load() != 0 {
		t.Fatalf("%v %d %+v hits %d refreshes %d", err, w.Code, rec, up.hits.Load(), cr.refreshes.Load())
	}
	if cr.cache.Len() != 0 {
		t.Fatal("the refused token stayed in the cache")
	}
}

func TestForwardPassesBackWithoutFollowing(t *testing.T) {
	f, up, cr, tg := setup(t, Config{})
	var other atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { other.Add(1) }))
	defer elsewhere.Close()
	up.h = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/redirect":
			http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusFound)
		case "/api/busy":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/api/down":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}
	w, _, _ := serve(f, cr.call("a", tg, "redirect", ""), "GET", "", nil)
	if w.Code != http.StatusFound || w.Header().Get("Location") != elsewhere.URL+"/steal" || other.Load() != 0 {
		t.Fatalf("redirect: %d %q, other host hit %d times", w.Code, w.Header().Get("Location"), other.Load())
	}
	for path, want := range map[string]string{"busy": "7", "down": "30"} {
		before := up.hits.Load()
		w, _, _ := serve(f, cr.call("a", tg, path, ""), "GET", "", nil)
		if w.Header().Get("Retry-After") != want || w.Code < 429 || up.hits.Load()-before != 1 {
			t.Fatalf("%s: %d Retry-After %q, %d hits", path, w.Code, w.Header().Get("Retry-After"), up.hits.Load()-before)
		}
	}
}

func TestForwardLimits(t *testing.T) {
	f, up, cr, tg := setup(t, Config{MaxRequestBody: 1 << 20, MaxResponseBody: 1000, Timeout: 300 * time.Millisecond, MaxPerAgent: 1})
	t.Run("request body over the limit", func(t *testing.T) {
		r := httptest.NewRequest("POST", "http://gateway.test/", strings.NewReader(strings.Repeat("x", 2<<20)))
		w := httptest.NewRecorder()
		_, err := f.Serve(w, r, cr.call("a", tg, "upload", ""))
		if e, ok := httpapi.As(err); !ok || e.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %v", err)
		}
		if up.hits.Load() != 0 {
			t.Fatal("the provider received the oversized upload")
		}
	})
	t.Run("streamed body over the limit", func(t *testing.T) {
		r := httptest.NewRequest("POST", "http://gateway.test/", io.MultiReader(strings.NewReader(strings.Repeat("x", 2<<20))))
		r.ContentLength = -1
		w := httptest.NewRecorder()
		_, err := f.Serve(w, r, cr.call("a", tg, "upload", ""))
		if e, ok := httpapi.As(err); !ok || e.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %v (%d)", err, w.Code)
		}
	})
	up.h = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/big":
			w.Header().Set("Content-Length", "5000")
			_, _ = w.Write([]byte(strings.Repeat("y", 5000)))
		case "/api/stream":
			for i := 0; i < 5; i++ {
				_, _ = w.Write([]byte(strings.Repeat("y", 1000)))
				w.(http.Flusher).Flush()
			}
		case "/api/hang":
			<-r.Context().Done()
		}
	}
	t.Run("response over the limit", func(t *testing.T) {
		_, _, err := serve(f, cr.call("a", tg, "big", ""), "GET", "", nil)
		if e, ok := httpapi.As(err); !ok || e.Status != http.StatusBadGateway || e.Code != httpapi.CodeTooLarge {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("streamed response over the limit", func(t *testing.T) {
		w, _, err := serve(f, cr.call("a", tg, "stream", ""), "GET", "", nil)
		if !Aborted(err) || w.Body.Len() > 1000 {
			t.Fatalf("got %v after %d bytes", err, w.Body.Len())
		}
	})
	t.Run("upstream never answers", func(t *testing.T) {
		start := time.Now()
		_, _, err := serve(f, cr.call("a", tg, "hang", ""), "GET", "", nil)
		if e, ok := httpapi.As(err); !ok || e.Status != http.StatusGatewayTimeout || e.Code != CodeUpstreamTimeout {
			t.Fatalf("got %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the timeout did not apply")
		}
	})
	t.Run("per-agent concurrency", func(t *testing.T) {
		done := make(chan struct{})
		go func() { defer close(done); _, _, _ = serve(f, cr.call("a", tg, "hang", ""), "GET", "", nil) }()
		deadline := time.Now().Add(2 * time.Second)
		for {
			f.mu.Lock()
			n := f.inFlight["a"]
			f.mu.Unlock()
			if n == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		_, _, err := serve(f, cr.call("a", tg, "x", ""), "GET", "", nil)
		if e, ok := httpapi.As(err); !ok || e.Status != http.StatusTooManyRequests {
			t.Fatalf("second call in flight: %v", err)
		}
		// Another agent is not held up.
		w, _, err := serve(f, cr.call("b", tg, "x", ""), "GET", "", nil)
		if err != nil || w.Code != 200 {
			t.Fatalf("other agent: %v %d", err, w.Code)
		}
		<-done
	})
}

func TestTokensSingleFlightAndExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := NewTokens(TokensOptions{Margin: time.Minute, MaxAge: 5 * time.Minute, Now: clock})
	var reads atomic.Int64
	release := make(chan struct{})
	fetch := func(context.Context) (Token, error) {
		reads.Add(1)
		<-release
		return Token{Value: "t", ExpiresAt: clock().Add(3 * time.Minute)}, nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Get(context.Background(), "k", fetch) }()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if reads.Load() != 1 {
		t.Fatalf("%d broker reads for 20 concurrent callers", reads.Load())
	}
	mu.Lock()
	now = now.Add(90 * time.Second) // 90s before expiry: still outside the margin
	mu.Unlock()
	_, _ = c.Get(context.Background(), "k", fetch)
	if reads.Load() != 1 {
		t.Fatal("token read again before expiry minus margin")
	}
	mu.Lock()
	now = now.Add(31 * time.Second) // within a minute of expiry
	mu.Unlock()
	_, _ = c.Get(context.Background(), "k", fetch)
	if reads.Load() != 2 {
		t.Fatal("token served within the refresh margin")
	}
	// A refresh for a token that was already replaced is not run again.
	var refreshes atomic.Int64
	refresh := func(context.Context) (Token, error) {
		refreshes.Add(1)
		return Token{Value: "t2", ExpiresAt: clock().Add(time.Hour)}, nil
	}
	if tok, _ := c.Refresh(context.Background(), "k", "t", refresh); tok.Value != "t2" {
		t.Fatal("refresh did not replace the stale token")
	}
	if tok, _ := c.Refresh(context.Background(), "k", "t", refresh); tok.Value != "t2" || refreshes.Load() != 1 {
		t.Fatalf("second refresh of the same stale token ran again (%d)", refreshes.Load())
	}
	c.Drop("k")
	if c.Len() != 0 {
		t.Fatal("Drop kept the entry")
	}
}

func TestForwardProductionRefusesPlainHTTPAndLoopback(t *testing.T) {
	up := newUpstream(t, "tok-1")
	cr := &creds{cache: NewTokens(TokensOptions{}), up: up, current: "tok-1"}
	f := New(Config{}, Deps{}) // production: private addresses refused
	httpTarget, _ := Resolve("acme", API{BaseURLs: []string{up.srv.URL}}, nil)
	_, _, err := serve(f, cr.call("a", httpTarget, "x", ""), "GET", "", nil)
	if e, ok := httpapi.As(err); !ok || e.Code != CodeNotConfigured {
		t.Fatalf("http base: %v", err)
	}
	tls := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { up.hits.Add(1) }))
	defer tls.Close()
	httpsTarget, _ := Resolve("acme", API{BaseURLs: []string{tls.URL}}, nil)
	_, _, err = serve(f, cr.call("a", httpsTarget, "x", ""), "GET", "", nil)
	if e, ok := httpapi.As(err); !ok || e.Code != CodeUpstreamError {
		t.Fatalf("loopback https base: %v", err)
	}
	if up.hits.Load() != 0 {
		t.Fatal("a refused call reached the upstream")
	}
}

// A connection's own credential goes in its own header, whatever the
// provider's api_auth says (its constant headers still go), and a 401 is
// passed back without a refresh.
func TestForwardInjectsACredentialByItsOwnRule(t *testing.T) {
	f, up, _, _ := setup(t, Config{})
	up.h = func(w http.ResponseWriter, r *http.Request) {}
	tg, err := Resolve("anthropic", API{BaseURLs: []string{up.srv.URL}, Auth: &provider.APIAuth{Header: "X-Shop-Token",
		Headers: map[string]string{"Anthropic-Version": "2023-06-01"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var refreshes atomic.Int64
	call := Call{Agent: "a", Target: tg, Path: "v1/messages",
		Token: func(context.Context) (Token, error) {
			return Token{Value: secret.String("sk-key-1"), Header: "X-Api-Key"}, nil
		},
		Refresh: func(context.Context, secret.String) (Token, error) {
			refreshes.Add(1)
			return Token{Value: secret.String("sk-key-1"), Header: "X-Api-Key"}, nil
		},
		Drop: func() {},
	}
	w, rec, err := serve(f, call, "POST", "{}", map[string]string{"X-Api-Key": "agent-supplied"})
	got := up.last().Header
	if fmt.Sprint(got.Values("X-Api-Key")) != "[sk-key-1]" || got.Get("Anthropic-Version") != "2023-06-01" ||
		got.Get("X-Shop-Token") != "" || got.Get("Authorization") != "" {
		t.Fatalf("upstream headers %v", got)
	}
	// The upstream refuses anything but Bearer tok-1: a 401, passed back.
	if err != nil || w.Code != http.StatusUnauthorized || rec.Retried || refreshes.Load() != 0 || up.hits.Load() != 1 {
		t.Fatalf("refused credential: %v %d retried=%v, %d refreshes, %d upstream hits", err, w.Code, rec.Retried, refreshes.Load(), up.hits.Load())
	}
}
