package sdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI is a provider API that accepts only the tokens in good and
// records what it was sent.
type fakeAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	good   map[string]bool
	hits   int
	bodies []string
}

func newFakeAPI(t *testing.T, good ...string) *fakeAPI {
	a := &fakeAPI{good: map[string]bool{}}
	for _, g := range good {
		a.good[g] = true
	}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.hits++
		a.bodies = append(a.bodies, string(b))
		ok := a.good[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		a.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"sub":"alice"}`)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAPI) stats() (int, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits, append([]string(nil), a.bodies...)
}

// renewingGateway hands out "old" until a refresh, then "new". With
// refreshStatus set, the refresh route answers that error instead and
// token reads after it hand out readAfter.
func renewingGateway(t *testing.T, refreshStatus int, readAfter string) *fakeGateway {
	exp := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	var current atomic.Value
	current.Store("old")
	return newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, tokenAnswer(current.Load().(string), exp))
		},
		"POST /v1/refresh/{id}": func(w http.ResponseWriter, r *http.Request) {
			if refreshStatus != 0 {
				current.Store(readAfter)
				writeErr(w, refreshStatus, "not_implemented", "forced refresh is not available in this version")
				return
			}
			current.Store("new")
			writeJSON(w, 200, tokenAnswer("new", exp))
		},
	})
}

func TestHTTPClientRefreshesOnceOn401(t *testing.T) {
	tests := []struct {
		name          string
		apiAccepts    []string
		refreshStatus int                      // 0: refresh works
		readAfter     string                   // token read after an unsupported refresh
		body          func() (io.Reader, bool) // request body; bool: strip GetBody
		wantStatus    int
		wantHits      int
		wantRefreshes int
		wantReads     int
	}{
		{name: "401 once, then the refreshed token works", apiAccepts: []string{"new"},
			wantStatus: 200, wantHits: 2, wantRefreshes: 1, wantReads: 1},
		{name: "second 401 is returned, not looped", apiAccepts: nil,
			wantStatus: 401, wantHits: 2, wantRefreshes: 1, wantReads: 1},
		{name: "valid token needs no refresh", apiAccepts: []string{"old"},
			wantStatus: 200, wantHits: 1, wantRefreshes: 0, wantReads: 1},
		{name: "replayable body is sent again", apiAccepts: []string{"new"},
			body:       func() (io.Reader, bool) { return strings.NewReader(`{"q":1}`), false },
			wantStatus: 200, wantHits: 2, wantRefreshes: 1, wantReads: 1},
		{name: "body without GetBody is not replayed", apiAccepts: []string{"new"},
			body:       func() (io.Reader, bool) { return strings.NewReader(`{"q":1}`), true },
			wantStatus: 401, wantHits: 1, wantRefreshes: 0, wantReads: 1},
		{name: "no forced refresh: a new token read is used", apiAccepts: []string{"reread"},
			refreshStatus: 501, readAfter: "reread", wantStatus: 200, wantHits: 2, wantRefreshes: 1, wantReads: 2},
		{name: "no forced refresh and the same token: 401 returned", apiAccepts: nil,
			refreshStatus: 501, readAfter: "old", wantStatus: 401, wantHits: 1, wantRefreshes: 1, wantReads: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, tc.apiAccepts...)
			gw := renewingGateway(t, tc.refreshStatus, tc.readAfter)
			c, _, _ := testClient(t, gw)
			hc := c.HTTPClient(context.Background(), testID)

			method, body, strip := http.MethodGet, io.Reader(nil), false
			if tc.body != nil {
				method = http.MethodPost
				body, strip = tc.body()
			}
			req, err := http.NewRequest(method, api.srv.URL+"/userinfo", body)
			if err != nil {
				t.Fatal(err)
			}
			if strip {
				req.GetBody = nil
				req.Body = io.NopCloser(req.Body)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			hits, bodies := api.stats()
			if resp.StatusCode != tc.wantStatus || hits != tc.wantHits {
				t.Fatalf("status %d after %d API calls, want %d after %d", resp.StatusCode, hits, tc.wantStatus, tc.wantHits)
			}
			if got := gw.calls("POST /v1/refresh/{id}"); got != tc.wantRefreshes {
				t.Fatalf("%d refreshes, want %d", got, tc.wantRefreshes)
			}
			if got := gw.calls("GET /v1/token/{id}"); got != tc.wantReads {
				t.Fatalf("%d token reads, want %d", got, tc.wantReads)
			}
			if tc.body != nil {
				for i, b := range bodies {
					if b != `{"q":1}` {
						t.Fatalf("API call %d got body %q", i+1, b)
					}
				}
			}
			if req.Header.Get("Authorization") != "" {
				t.Fatal("the caller's request was modified")
			}
		})
	}
}

func TestHTTPClientConcurrent401sShareOneRefresh(t *testing.T) {
	api := newFakeAPI(t, "new")
	gw := renewingGateway(t, 0, "")
	c, _, _ := testClient(t, gw)
	hc := c.HTTPClient(context.Background(), testID)
	// Warm the cache with "old", so every request below starts with it.
	if resp, err := hc.Get(api.srv.URL); err == nil {
		resp.Body.Close()
	}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Post(api.srv.URL, "application/json", bytes.NewReader([]byte(`{}`)))
			if err != nil || resp.StatusCode != 200 {
				bad.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d requests failed", bad.Load())
	}
	if n := gw.calls("POST /v1/refresh/{id}"); n != 1 {
		t.Fatalf("%d refreshes for one revoked token", n)
	}
}

func TestHTTPClientTokenErrorReachesCaller(t *testing.T) {
	api := newFakeAPI(t, "old")
	gw := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, 409, "not_ready", "connection is pending")
		},
	})
	c, _, _ := testClient(t, gw)
	_, err := c.HTTPClient(context.Background(), testID).Get(api.srv.URL)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("err = %v", err)
	}
	if hits, _ := api.stats(); hits != 0 {
		t.Fatal("the API was called without a token")
	}
}

// TestHTTPClientTokenStaysAtTheRequestedOrigin: net/http follows an API's
// redirects through the transport, and the token must go only to the origin
// (scheme, host, port) the caller asked for. The other origin here answers
// 401, as a page fishing for credentials would: it must see no token, and
// its 401 must not make the client refresh and try again with a new one.
func TestHTTPClientTokenStaysAtTheRequestedOrigin(t *testing.T) {
	var mu sync.Mutex
	var seenElsewhere []string
	elsewhere := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seenElsewhere = append(seenElsewhere, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Bearer realm="elsewhere"`)
		http.Error(w, "credentials, please", http.StatusUnauthorized)
	})
	api := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/collect", http.StatusFound)
		case "/here":
			if r.Header.Get("Authorization") != "Bearer old" {
				http.Error(w, "invalid token", http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"sub":"alice"}`)
		default:
			http.NotFound(w, r)
		}
	})
	tests := []struct {
		name          string
		path          string
		wantStatus    int
		wantElsewhere int // requests the other origin received
	}{
		{name: "same-origin redirect keeps the token", path: "/moved", wantStatus: 200},
		{name: "redirect to another origin drops the token", path: "/away", wantStatus: 401, wantElsewhere: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seenElsewhere = nil
			mu.Unlock()
			gw := renewingGateway(t, 0, "")
			c, _, _ := testClient(t, gw)
			resp, err := c.HTTPClient(context.Background(), testID).Get(api.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			mu.Lock()
			seen := append([]string(nil), seenElsewhere...)
			mu.Unlock()
			if len(seen) != tc.wantElsewhere {
				t.Fatalf("the other origin got %d requests, want %d", len(seen), tc.wantElsewhere)
			}
			for _, auth := range seen {
				if auth != "" {
					t.Fatalf("the other origin was sent Authorization %q", auth)
				}
			}
			if n := gw.calls("POST /v1/refresh/{id}"); n != 0 {
				t.Fatalf("%d forced refreshes; no 401 came back for the token", n)
			}
		})
	}
}

// TestHTTPClientRepeated401sForceOneRefresh: an API that answers 401 for a
// reason other than the token (no access to the resource) gets one forced
// refresh, not one per request; every caller gets the API's 401.
func TestHTTPClientRepeated401sForceOneRefresh(t *testing.T) {
	api := newFakeAPI(t) // accepts no token at all
	gw := renewingGateway(t, 0, "")
	c, clk, _ := testClient(t, gw)
	hc := c.HTTPClient(context.Background(), testID)
	get := func() {
		t.Helper()
		resp, err := hc.Get(api.srv.URL + "/forbidden-to-alice")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("status %d, want the API's own 401", resp.StatusCode)
		}
	}
	for range 20 {
		get()
	}
	if n := gw.calls("POST /v1/refresh/{id}"); n != 1 {
		t.Fatalf("%d forced refreshes for 20 requests, want 1", n)
	}
	// The first request is tried again with the refreshed token; the others
	// are not repeated.
	if hits, _ := api.stats(); hits != 21 {
		t.Fatalf("%d API calls for 20 requests, want 21", hits)
	}
	// The pause ends: after it, a 401 may force a refresh again.
	clk.advance(30 * time.Second)
	get()
	if n := gw.calls("POST /v1/refresh/{id}"); n != 2 {
		t.Fatalf("%d forced refreshes after the cooldown, want 2", n)
	}
}
