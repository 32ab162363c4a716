package gateway_test

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

	"google.golang.org/grpc/codes"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/proxy"
)

// providerAPI is a provider's API behind the proxy: it accepts one token.
type providerAPI struct {
	srv       *httptest.Server
	hits      atomic.Int64
	mu        sync.Mutex
	valid     string
	auths     []string
	other     *httptest.Server // another host the API redirects to
	otherHits atomic.Int64
}

func newProviderAPI(t *testing.T) *providerAPI {
	p := &providerAPI{valid: "tok-1"}
	p.other = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { p.otherHits.Add(1) }))
	t.Cleanup(p.other.Close)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		p.mu.Lock()
		p.auths = append(p.auths, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Api-Key"))
		valid := p.valid
		p.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+valid {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/hang":
			<-r.Context().Done()
			return
		case "/api/redirect":
			http.Redirect(w, r, p.other.URL+"/collect", http.StatusFound)
			return
		case "/api/busy":
			w.Header().Set("Retry-After", "12")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// proxyHarness is a gateway whose fake broker knows provider prov-1's API
// (api at api.srv) and an active connection of agent-a.
func proxyHarness(t *testing.T, edit ...func(*gateway.Config)) (*harness, *providerAPI, string) {
	t.Helper()
	api := newProviderAPI(t)
	h := newHarness(t, append([]func(*gateway.Config){func(c *gateway.Config) { c.Proxy.AllowPrivate = true }}, edit...)...)
	id, _ := h.requestConnection(keyA)
	h.fb.set(id, "active", "", activeToken("tok-1"))
	h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == "GET" && r.URL.Path == "/providers/prov-1":
			writeJSON(w, map[string]any{"id": "prov-1", "name": "google", "client_id": "x",
				"api_base_urls": []string{api.srv.URL + "/api", api.srv.URL + "/other"}})
			return true
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/refresh"):
			api.mu.Lock()
			valid := api.valid
			api.mu.Unlock()
			h.fb.mu.Lock()
			h.fb.conns[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/connections/"), "/refresh")].token = activeToken(valid)
			h.fb.mu.Unlock()
			writeJSON(w, activeToken(valid))
			return true
		case r.Method == "DELETE":
			h.fb.mu.Lock()
			delete(h.fb.conns, strings.TrimPrefix(r.URL.Path, "/connections/"))
			h.fb.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	})
	return h, api, id
}

func (h *harness) brokerCalls(pathSuffix string) int {
	h.fb.mu.Lock()
	defer h.fb.mu.Unlock()
	n := 0
	for _, s := range h.fb.seen {
		if strings.HasSuffix(s.path, pathSuffix) {
			n++
		}
	}
	return n
}

func TestProxyForwardsWithTheConnectionsToken(t *testing.T) {
	h, api, id := proxyHarness(t)
	for i := 0; i < 3; i++ {
		res := h.rawCall("POST", "/v1/proxy/"+id+"/users/me?x=1&base=0", bearer(keyA), `{"a":1}`)
		if res.status != 200 || string(res.body) != `POST /api/users/me?x=1 {"a":1}` {
			t.Fatalf("call %d: %d %s", i, res.status, res.body)
		}
		if strings.Contains(fmt.Sprint(res.header), "tok-1") {
			t.Fatal("the token reached the agent")
		}
	}
	// The token was read once, then served from memory.
	if n := h.brokerCalls("/token"); n != 1 {
		t.Fatalf("%d broker token reads for 3 proxied calls", n)
	}
	api.mu.Lock()
	for _, a := range api.auths {
		if a != "Bearer tok-1|" {
			t.Fatalf("the provider saw %q: the agent's key must never reach it", a)
		}
	}
	api.mu.Unlock()
	res := h.call("GET", "/v1/proxy-bases/"+id, "/v1/proxy-bases/{connection_id}", bearer(keyA), "")
	if res.status != 200 || string(res.body) != `{"api_base_urls":["`+api.srv.URL+`/api","`+api.srv.URL+`/other"],"provider":"google"}`+"\n" {
		t.Fatalf("proxy-bases: %d %s", res.status, res.body)
	}
	// Another base by header.
	res = h.rawCall("GET", "/v1/proxy/"+id+"/x", map[string]string{"Authorization": "Bearer " + keyA, proxy.BaseHeader: "1"}, "")
	if res.status != 200 || string(res.body) != "GET /other/x " {
		t.Fatalf("base 1: %d %s", res.status, res.body)
	}
	logs := h.logs.String()
	if strings.Contains(logs, "tok-1") || strings.Contains(logs, keyA) {
		t.Fatal("the token or the agent's key reached the log")
	}
	// One audit line per call, with who, which connection, where and how
	// it went, and never the query.
	var audited int
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"msg":"proxy call"`) {
			continue
		}
		audited++
		for _, want := range []string{`"agent":"agent-a"`, `"connection_id":"` + id + `"`, `"provider":"google"`, `"method":`,
			`"host":"` + strings.TrimPrefix(api.srv.URL, "http://") + `"`, `"path":"/`, `"status":200`, `"bytes_in":`, `"bytes_out":`, `"duration_ms":`} {
			if !strings.Contains(line, want) {
				t.Fatalf("audit line lacks %s: %s", want, line)
			}
		}
		if strings.Contains(line, "x=1") {
			t.Fatalf("the audit line holds the query: %s", line)
		}
	}
	if audited != 4 {
		t.Fatalf("%d audit lines for 4 proxied calls", audited)
	}
}

func TestProxyRefusals(t *testing.T) {
	h, api, id := proxyHarness(t)
	idB, _ := h.requestConnection(keyB)
	h.fb.set(idB, "active", "", activeToken("tok-1"))
	for _, tc := range []struct {
		name, key, path string
		status          int
		code            string
	}{
		{"another agent's connection", keyA, "/v1/proxy/" + idB + "/users/me", 404, "not_found"},
		{"no key", "", "/v1/proxy/" + id + "/users/me", 401, "unauthorized"},
		{"dot-dot", keyA, "/v1/proxy/" + id + "/../../x", 400, "bad_request"},
		{"encoded dot-dot", keyA, "/v1/proxy/" + id + "/%2e%2e/%2e%2e/x", 400, "bad_request"},
		{"encoded slash", keyA, "/v1/proxy/" + id + "/a%2f..%2fb", 400, "bad_request"},
		{"encoded slash alone", keyA, "/v1/proxy/" + id + "/a%2fb", 400, proxy.CodePathRefused},
		{"absolute URL", keyA, "/v1/proxy/" + id + "/https://evil.example/x", 400, "bad_request"},
		{"absolute URL, one slash", keyA, "/v1/proxy/" + id + "/https:/evil.example/x", 400, proxy.CodePathRefused},
		{"unknown base", keyA, "/v1/proxy/" + id + "/x?base=7", 400, "bad_request"},
		{"malformed id", keyA, "/v1/proxy/NOT-AN-ID/x", 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.key != "" {
				hdr = bearer(tc.key)
			}
			res := h.rawCall("GET", tc.path, hdr, "")
			h.validate("GET", tc.path, "/v1/proxy/{connection_id}/{path}", res)
			if code, _ := res.envelope(t); res.status != tc.status || code != tc.code {
				t.Fatalf("got %d %s, want %d %s", res.status, res.body, tc.status, tc.code)
			}
		})
	}
	if n := api.hits.Load(); n != 0 {
		t.Fatalf("refused calls reached the provider %d times", n)
	}
}

func TestProxyRefreshesOnceAfterProvider401(t *testing.T) {
	h, api, id := proxyHarness(t)
	if res := h.rawCall("GET", "/v1/proxy/"+id+"/a", bearer(keyA), ""); res.status != 200 {
		t.Fatalf("first call %d", res.status)
	}
	api.mu.Lock()
	api.valid = "tok-2" // the provider revoked tok-1
	api.mu.Unlock()
	res := h.rawCall("GET", "/v1/proxy/"+id+"/b", bearer(keyA), "")
	if res.status != 200 || string(res.body) != "GET /api/b " {
		t.Fatalf("after revocation: %d %s", res.status, res.body)
	}
	if n := h.brokerCalls("/refresh"); n != 1 {
		t.Fatalf("%d broker refreshes, want 1", n)
	}
	if n := api.hits.Load(); n != 3 {
		t.Fatalf("provider hit %d times, want 3 (ok, 401, retry)", n)
	}
}

func TestProxyForgetsDeletedConnection(t *testing.T) {
	h, api, id := proxyHarness(t)
	if res := h.rawCall("GET", "/v1/proxy/"+id+"/a", bearer(keyA), ""); res.status != 200 {
		t.Fatalf("first call %d", res.status)
	}
	if res := h.rawCall("DELETE", "/v1/connections/"+id, bearer(keyA), ""); res.status != 204 {
		t.Fatalf("delete %d %s", res.status, res.body)
	}
	before := api.hits.Load()
	res := h.rawCall("GET", "/v1/proxy/"+id+"/a", bearer(keyA), "")
	if code, _ := res.envelope(t); res.status != 404 || code != "not_found" || api.hits.Load() != before {
		t.Fatalf("after delete: %d %s, provider hits %d", res.status, res.body, api.hits.Load()-before)
	}
}

func TestProxyOnlyAgentMayProxy(t *testing.T) {
	h, _, id := proxyHarness(t, func(c *gateway.Config) {
		clients, err := gateway.ParseClientKeys("agent-a:" + keyA + ";proxy-only")
		if err != nil {
			t.Fatal(err)
		}
		c.Clients = clients
	})
	if res := h.rawCall("GET", "/v1/proxy/"+id+"/me", bearer(keyA), ""); res.status != 200 {
		t.Fatalf("proxy-only agent: %d %s", res.status, res.body)
	}
	if res := h.rawCall("GET", "/v1/token/"+id, bearer(keyA), ""); res.status != 403 {
		t.Fatalf("proxy-only token read: %d", res.status)
	}
}

func TestProxyLimitsAndUpstreamTrouble(t *testing.T) {
	h, api, id := proxyHarness(t, func(c *gateway.Config) { c.Proxy.Timeout = 500 * time.Millisecond })
	t.Run("50 MB upload over the limit", func(t *testing.T) {
		before := api.hits.Load()
		req, _ := http.NewRequest("PUT", h.srv.URL+"/v1/proxy/"+id+"/upload", io.LimitReader(zeros{}, 50<<20))
		req.ContentLength = 50 << 20
		req.Header.Set("Authorization", "Bearer "+keyA)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"too_large"`) {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
		if api.hits.Load() != before {
			t.Fatal("the provider received the oversized upload")
		}
	})
	t.Run("redirect to another host", func(t *testing.T) {
		// The agent's client does not follow redirects, to see what the
		// gateway answered.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", h.srv.URL+"/v1/proxy/"+id+"/redirect", nil)
		req.Header.Set("Authorization", "Bearer "+keyA)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != api.other.URL+"/collect" {
			t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
		}
		if api.otherHits.Load() != 0 {
			t.Fatal("the other host received a request")
		}
	})
	t.Run("429 passed back with Retry-After, not retried", func(t *testing.T) {
		before := api.hits.Load()
		res := h.rawCall("GET", "/v1/proxy/"+id+"/busy", bearer(keyA), "")
		if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "12" || api.hits.Load()-before != 1 {
			t.Fatalf("got %d %v after %d provider hits", res.status, res.header, api.hits.Load()-before)
		}
	})
	t.Run("upstream never answers", func(t *testing.T) {
		hung := make(chan result, 1)
		go func() { hung <- h.rawCall("GET", "/v1/proxy/"+id+"/hang", bearer(keyA), "") }()
		// Meanwhile the gateway serves other calls.
		for i := 0; i < 3; i++ {
			if res := h.rawCall("GET", "/v1/proxy/"+id+"/fine", bearer(keyA), ""); res.status != 200 {
				t.Fatalf("call beside the hung one: %d %s", res.status, res.body)
			}
		}
		res := <-hung
		if code, _ := res.envelope(t); res.status != http.StatusGatewayTimeout || code != "upstream_timeout" {
			t.Fatalf("hung call: %d %s", res.status, res.body)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestProxyOverGRPC(t *testing.T) {
	h, api, id := proxyHarness(t)
	idB, _ := h.requestConnection(keyB)
	h.fb.set(idB, "active", "", activeToken("tok-1"))
	client, _ := h.grpcClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctxA := withKey(ctx, keyA)
	out, err := client.ProxyCall(ctxA, &dromosv1.ProxyCallRequest{ConnectionId: id, Method: "POST", Path: "users/me", Query: "x=1",
		Headers: []*dromosv1.ProxyHeader{{Name: "Authorization", Value: "Bearer agent-supplied"}, {Name: "X-Trace", Value: "t"}},
		Body:    []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.GetStatus() != 200 || string(out.GetBody()) != `POST /api/users/me?x=1 {"a":1}` {
		t.Fatalf("answer %d %s", out.GetStatus(), out.GetBody())
	}
	if out, err = client.ProxyCall(ctxA, &dromosv1.ProxyCallRequest{ConnectionId: id, Path: "x", Base: 1}); err != nil || string(out.GetBody()) != "GET /other/x " {
		t.Fatalf("base 1: %v %s", err, out.GetBody())
	}
	before := api.hits.Load()
	for _, p := range []string{"../x", "a/%2e%2e/%2e%2e/x", "a%2fb", "https://evil.example/x", "a//b"} {
		_, err := client.ProxyCall(ctxA, &dromosv1.ProxyCallRequest{ConnectionId: id, Path: p})
		wantStatus(t, err, codes.InvalidArgument, proxy.CodePathRefused)
	}
	_, err = client.ProxyCall(ctxA, &dromosv1.ProxyCallRequest{ConnectionId: idB, Path: "x"})
	wantStatus(t, err, codes.NotFound, "not_found")
	if api.hits.Load() != before {
		t.Fatal("refused calls reached the provider")
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	for _, a := range api.auths {
		if a != "Bearer tok-1|" {
			t.Fatalf("the provider saw %q", a)
		}
	}
}
