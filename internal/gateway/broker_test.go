package gateway_test

import (
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/state"
)

const someID = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"

const consentBody = `{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"https://a.example/"}`

func TestBrokerDown(t *testing.T) {
	// A listener opened and closed: nothing answers on that port.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	h := newHarness(t, func(c *gateway.Config) { c.BrokerBaseURL = "http://" + addr })
	for _, c := range []struct{ method, path, template, body string }{
		{"POST", "/v1/request-connection", "/v1/request-connection", consentBody},
		{"GET", "/v1/check-connection/" + someID, "/v1/check-connection/{connection_id}", ""},
		{"GET", "/v1/token/" + someID, "/v1/token/{connection_id}", ""},
		{"POST", "/v1/refresh/" + someID, "/v1/refresh/{connection_id}", ""},
		{"GET", "/v1/providers", "/v1/providers", ""},
	} {
		res := h.call(c.method, c.path, c.template, bearer(keyA), c.body)
		if code, _ := res.envelope(t); res.status != http.StatusServiceUnavailable || code != "unavailable" || res.header.Get("Retry-After") != "2" {
			t.Fatalf("%s %s: %d Retry-After=%q %s", c.method, c.path, res.status, res.header.Get("Retry-After"), res.body)
		}
	}
	if !strings.Contains(h.logs.String(), "broker get_token") {
		t.Fatalf("the broker failure was not logged for the operator: %s", h.logs.String())
	}
}

func TestBrokerSlowGatewayStaysResponsive(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) { c.BrokerAttemptTimeout = 200 * time.Millisecond })
	entered := make(chan struct{}, 8)
	h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		entered <- struct{}{}
		<-r.Context().Done() // hang until the gateway gives up
		return true
	})
	for _, c := range []struct{ method, path, template, body string }{
		{"GET", "/v1/token/" + someID, "/v1/token/{connection_id}", ""},
		{"POST", "/v1/request-connection", "/v1/request-connection", consentBody},
	} {
		done := make(chan result, 1)
		go func() {
			// rawCall never touches t; the answer is validated below, on
			// the test goroutine.
			done <- h.rawCall(c.method, c.path, bearer(keyA), c.body)
		}()
		<-entered
		// The broker is hanging on a request right now; the gateway still
		// answers its own health check.
		if res := h.call("GET", "/health", "/health", nil, ""); res.status != http.StatusOK {
			t.Fatalf("health while broker hangs: %d", res.status)
		}
		res := <-done
		h.validate(c.method, c.path, c.template, res)
		if code, _ := res.envelope(t); res.status != http.StatusServiceUnavailable || code != "unavailable" || res.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s with a hanging broker: %d %s", c.method, c.path, res.status, res.body)
		}
	}
	if n := h.fb.requests.Load(); n != 2 {
		t.Fatalf("broker saw %d requests, want 2 (a timeout is not retried)", n)
	}
}

func TestBrokerAnswersMapped(t *testing.T) {
	huge := `{"access_token":"` + strings.Repeat("a", 1<<20) + `","token_type":"Bearer"}`
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantStatus int
		wantCode   string
		wantMsg    string
		retryAfter string
	}{
		{"500 becomes 502", 500, nil, `{"code":"internal","message":"db password=hunter2"}`, 502, "broker_error", "the broker answered unexpectedly", ""},
		{"garbage 200", 200, nil, `<html>oops</html>`, 502, "broker_error", "unreadable", ""},
		{"token without access_token", 200, nil, `{"token_type":"Bearer"}`, 502, "broker_error", "unreadable token", ""},
		{"oversized answer", 200, nil, huge, 502, "broker_error", "oversized", ""},
		{"broker rejects our key", 401, nil, `{"code":"unauthorized","message":"API key missing or wrong"}`, 502, "broker_error", "unexpectedly", ""},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "7"}, `{"code":"unavailable","message":"database unavailable"}`, 503, "unavailable", "database unavailable", "7"},
		{"503 without Retry-After", 503, nil, `oops`, 503, "unavailable", "the broker is unavailable", "2"},
		{"409 not_ready", 409, nil, `{"code":"not_ready","message":"connection is not active yet"}`, 409, "not_ready", "connection is not active yet", ""},
		{"409 reauth_required", 409, nil, `{"code":"reauth_required","message":"needs a new consent"}`, 409, "reauth_required", "needs a new consent", ""},
		{"404 envelope", 404, nil, `{"code":"not_found","message":"connection not found"}`, 404, "not_found", "connection not found", ""},
		{"404 without envelope", 404, nil, `404 page not found`, 404, "not_found", "not found", ""},
		{"409 garbage", 409, nil, `conflict`, 502, "broker_error", "unexpectedly", ""},
		{"502 provider_error", 502, nil, `{"code":"provider_error","message":"the provider rejected the refresh token"}`, 502, "provider_error", "the provider rejected the refresh token", ""},
		{"429 with Retry-After", 429, map[string]string{"Retry-After": "3"}, `{"code":"rate_limited","message":"slow down"}`, 429, "rate_limited", "slow down", "3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
				return true
			})
			res := h.call("GET", "/v1/token/"+someID, "/v1/token/{connection_id}", bearer(keyA), "")
			code, msg := res.envelope(t)
			if res.status != tc.wantStatus || code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("got %d %s, want %d %s %q", res.status, res.body, tc.wantStatus, tc.wantCode, tc.wantMsg)
			}
			if got := res.header.Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if strings.Contains(string(res.body), "hunter2") || strings.Contains(string(res.body), "<html>") {
				t.Fatalf("broker detail reached the agent: %s", res.body)
			}
		})
	}
}

func TestRefreshNotImplementedPassesThrough(t *testing.T) {
	h := newHarness(t)
	h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/refresh") {
			writeEnvelope(w, http.StatusNotImplemented, "not_implemented", "forced refresh is not available in this version")
			return true
		}
		return false
	})
	res := h.call("POST", "/v1/refresh/"+someID, "/v1/refresh/{connection_id}", bearer(keyA), "")
	code, msg := res.envelope(t)
	if res.status != http.StatusNotImplemented || code != "not_implemented" || msg != "forced refresh is not available in this version" {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	metrics := string(h.call("GET", "/metrics", "/metrics", nil, "").body)
	if !strings.Contains(metrics, `token_refresh_total{result="not_implemented"} 1`) {
		t.Fatalf("refresh result not counted:\n%s", metrics)
	}
}

func TestUnverifiableStateIsNeverReturned(t *testing.T) {
	foreign := newSigner(t, stateKey(9))
	// A second signer with the right secret but another key id is still
	// foreign: the gateway holds only key id 7.
	otherID := newSigner(t, state.Key{ID: 8, Secret: stateKey(7).Secret})
	cases := []struct {
		name      string
		stateFor  func(p state.Payload) string
		connIDFor func(signed string) string
	}{
		{"tampered state", func(p state.Payload) string {
			s, _ := newSigner(t, stateKey(7)).Sign(p)
			b := []byte(s)
			if b[10] == 'A' {
				b[10] = 'B'
			} else {
				b[10] = 'A'
			}
			return string(b)
		}, nil},
		{"signed with a foreign key", func(p state.Payload) string { s, _ := foreign.Sign(p); return s }, nil},
		{"signed under an unknown key id", func(p state.Payload) string { s, _ := otherID.Sign(p); return s }, nil},
		{"expired state", func(p state.Payload) string {
			p.IssuedAt, p.ExpiresAt = clock().Add(-time.Hour), clock().Add(-time.Minute)
			s, _ := newSigner(t, stateKey(7)).Sign(p)
			return s
		}, nil},
		{"state names another connection", nil, func(string) string { return "11111111-2222-4333-8444-555555555555" }},
		{"state names another workspace", func(p state.Payload) string {
			p.WorkspaceID = "someone-else"
			s, _ := newSigner(t, stateKey(7)).Sign(p)
			return s
		}, nil},
		{"state names another provider", func(p state.Payload) string {
			p.ProviderID = "99999999-2222-4333-8444-555555555555"
			s, _ := newSigner(t, stateKey(7)).Sign(p)
			return s
		}, nil},
		{"empty state", func(state.Payload) string { return "" }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var returned atomic.Value
			h.fb.mu.Lock()
			h.fb.stateFor = func(p state.Payload) string {
				s := tc.stateFor(p)
				returned.Store([2]string{s, p.ConnectionID})
				return s
			}
			if tc.stateFor == nil {
				h.fb.stateFor = func(p state.Payload) string {
					s, _ := newSigner(t, stateKey(7)).Sign(p)
					returned.Store([2]string{s, p.ConnectionID})
					return s
				}
			}
			h.fb.connIDFor = tc.connIDFor
			h.fb.mu.Unlock()
			res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA), consentBody)
			if code, _ := res.envelope(t); res.status != http.StatusBadGateway || code != "broker_error" {
				t.Fatalf("got %d %s, want 502 broker_error", res.status, res.body)
			}
			got, _ := returned.Load().([2]string)
			for _, leaked := range []string{got[0], got[1], "authorize", "11111111-2222"} {
				if leaked != "" && strings.Contains(string(res.body), leaked) {
					t.Fatalf("answer carries %q: %s", leaked, res.body)
				}
			}
			if n := h.fb.requests.Load(); n != 1 {
				t.Fatalf("consent sent %d times, want once", n)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name, method, path, template string
		body                         string
		failures                     int64 // broker 503s before it answers normally
		failStatus                   int
		wantStatus                   int
		wantRequests                 int64
	}{
		{"GET retried on 503 then succeeds", "GET", "/v1/providers", "/v1/providers", "", 2, 503, 200, 3},
		{"GET retried on 502 then succeeds", "GET", "/v1/providers", "/v1/providers", "", 1, 502, 200, 2},
		{"GET gives up after three attempts", "GET", "/v1/providers", "/v1/providers", "", 5, 503, 503, 3},
		{"GET not retried on 500", "GET", "/v1/providers", "/v1/providers", "", 5, 500, 502, 1},
		{"POST consent never retried", "POST", "/v1/request-connection", "/v1/request-connection", consentBody, 1, 503, 503, 1},
		{"POST refresh never retried", "POST", "/v1/refresh/" + someID, "/v1/refresh/{connection_id}", "", 1, 503, 503, 1},
		{"POST refresh not retried on 502", "POST", "/v1/refresh/" + someID, "/v1/refresh/{connection_id}", "", 1, 502, 502, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var n atomic.Int64
			h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if n.Add(1) <= tc.failures {
					writeEnvelope(w, tc.failStatus, "unavailable", "try again")
					return true
				}
				return false
			})
			res := h.call(tc.method, tc.path, tc.template, bearer(keyA), tc.body)
			if res.status != tc.wantStatus {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tc.wantStatus)
			}
			if got := h.fb.requests.Load(); got != tc.wantRequests {
				t.Fatalf("broker saw %d requests, want %d", got, tc.wantRequests)
			}
		})
	}
}

// Answers another attempt cannot change are not retried: a provider_error
// (each attempt would be one more provider call) and a 503 whose
// Retry-After is longer than the gateway waits between attempts.
func TestRetriesSkipProviderErrorsAndLongRetryAfter(t *testing.T) {
	cases := []struct {
		name         string
		write        func(w http.ResponseWriter)
		wantStatus   int
		wantRequests int64
	}{
		{"502 provider_error", func(w http.ResponseWriter) {
			writeEnvelope(w, http.StatusBadGateway, "provider_error", "the provider rejected the refresh")
		}, http.StatusBadGateway, 1},
		{"503 with Retry-After 600", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "600")
			writeEnvelope(w, http.StatusServiceUnavailable, "unavailable", "backing off")
		}, http.StatusServiceUnavailable, 1},
		{"503 with Retry-After 0", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "0")
			writeEnvelope(w, http.StatusServiceUnavailable, "unavailable", "try again")
		}, http.StatusServiceUnavailable, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				tc.write(w)
				return true
			})
			res := h.call("GET", "/v1/token/"+someID, "/v1/token/{connection_id}", bearer(keyA), "")
			if res.status != tc.wantStatus {
				t.Fatalf("got %d %s, want %d", res.status, res.body, tc.wantStatus)
			}
			if got := h.fb.requests.Load(); got != tc.wantRequests {
				t.Fatalf("broker saw %d requests, want %d", got, tc.wantRequests)
			}
		})
	}
}

func TestConnectionErrorsRetriedForGETOnly(t *testing.T) {
	// A broker that accepts connections and drops them unanswered.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	h := newHarness(t, func(c *gateway.Config) { c.BrokerBaseURL = "http://" + lis.Addr().String() })
	for _, c := range []struct{ method, path, template string }{
		{"GET", "/v1/providers", "/v1/providers"},
		{"POST", "/v1/refresh/" + someID, "/v1/refresh/{connection_id}"},
	} {
		res := h.call(c.method, c.path, c.template, bearer(keyA), "")
		if code, _ := res.envelope(t); res.status != http.StatusServiceUnavailable || code != "unavailable" || res.header.Get("Retry-After") != "2" {
			t.Fatalf("%s %s: %d %s", c.method, c.path, res.status, res.body)
		}
	}
	// Attempts are counted by the gateway's own metric: net/http may
	// re-dial a GET once by itself on a dropped connection, so accepted
	// connections would overcount.
	metrics := string(h.call("GET", "/metrics", "/metrics", nil, "").body)
	for _, want := range []string{
		`gateway_broker_requests_total{op="list_providers",result="unreachable"} 3`,
		`gateway_broker_requests_total{op="refresh",result="unreachable"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
