package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/sdk"
)

type hookView struct {
	ID         string   `json:"id"`
	ClientName string   `json:"client_name"`
	URL        string   `json:"url"`
	Events     []string `json:"events"`
	Secret     string   `json:"secret"`
}

// gatewayCall sends a broker call the way the gateway does.
func gatewayCall(t *testing.T, h *harness, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(httpapi.GatewayHeader, "1")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// The webhook API is scoped like the connection API: an agent's endpoint
// is invisible to another agent, and a gateway call must name its agent.
func TestWebhookAPIScopedByOwner(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	st, raw := gatewayCall(t, h, "POST", "/webhooks?client_name=agent-a", `{"url":"https://hooks.example.com/a","events":["connection.reauth_required"]}`)
	var a hookView
	if st != http.StatusCreated || json.Unmarshal(raw, &a) != nil || !strings.HasPrefix(a.Secret, "whsec_") || a.ClientName != "agent-a" {
		t.Fatalf("create: %d %s", st, raw)
	}
	if st, raw := gatewayCall(t, h, "GET", "/webhooks/"+a.ID+"?client_name=agent-a", ""); st != 200 || strings.Contains(string(raw), "whsec_") {
		t.Errorf("get by owner: %d %s (the secret is shown only at creation)", st, raw)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/webhooks/" + a.ID + "?client_name=agent-b"},
		{"DELETE", "/webhooks/" + a.ID + "?client_name=agent-b"},
		{"POST", "/webhooks/" + a.ID + "/rotate-secret?client_name=agent-b"},
		{"GET", "/webhooks/" + a.ID + "/deliveries?client_name=agent-b"},
	} {
		if st, _ := gatewayCall(t, h, c.method, c.path, ""); st != http.StatusNotFound {
			t.Errorf("%s %s by agent-b: %d, want 404", c.method, c.path, st)
		}
	}
	if st, raw := gatewayCall(t, h, "GET", "/webhooks?client_name=agent-b", ""); st != 200 || strings.Contains(string(raw), a.ID) {
		t.Errorf("agent-b's list: %d %s", st, raw)
	}
	if st, raw := gatewayCall(t, h, "GET", "/webhooks", ""); st != http.StatusForbidden || !strings.Contains(string(raw), httpapi.CodeOwnerRequired) {
		t.Errorf("gateway call without an owner: %d %s", st, raw)
	}
	if st, raw := gatewayCall(t, h, "POST", "/webhooks?client_name=agent-a", `{"url":"https://hooks.example.com/a","events":["connection.nope"]}`); st != 400 {
		t.Errorf("unknown event type: %d %s", st, raw)
	}
	var rotated hookView
	st, raw = gatewayCall(t, h, "POST", "/webhooks/"+a.ID+"/rotate-secret?client_name=agent-a", "")
	if st != 200 || json.Unmarshal(raw, &rotated) != nil || rotated.Secret == a.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
		t.Errorf("rotate: %d %s", st, raw)
	}
	if st, _ := gatewayCall(t, h, "DELETE", "/webhooks/"+a.ID+"?client_name=agent-a", ""); st != http.StatusNoContent {
		t.Errorf("delete by owner: %d", st)
	}
}

// The provider revokes the grant; the refresh that finds it dead is
// followed by a signed connection.reauth_required at the receiver within
// 5 seconds.
func TestReauthRequiredWebhookWithinFiveSeconds(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	var (
		mu   sync.Mutex
		got  []*sdk.WebhookEvent
		when []time.Time
		errs []error
	)
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		ev, err := sdk.VerifyWebhook(secret, r.Header, body, 0)
		if err != nil {
			errs = append(errs, err)
		} else {
			got, when = append(got, ev), append(when, time.Now())
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	// An operator's global endpoint (no client_name) for reauth only.
	var hv hookView
	if st := h.do("POST", "/webhooks", map[string]any{"url": recv.URL, "events": []string{"connection.reauth_required"}}, &hv); st != 201 {
		t.Fatalf("create: %d", st)
	}
	mu.Lock()
	secret = hv.Secret
	mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.broker.RunWorker(ctx, broker.WorkerOptions{Interval: time.Hour}) }()
	t.Cleanup(func() { cancel(); <-done })

	p.set(func(p *rotatingProvider) {
		p.fail = func() (int, string) { return 400, `{"error":"invalid_grant","error_description":"revoked"}` }
	})
	var env envelope
	if st := h.do("POST", "/connections/"+id+"/refresh", nil, &env); st != http.StatusConflict || env.Code != "reauth_required" {
		t.Fatalf("refresh: %d %+v", st, env)
	}
	found := time.Now()
	deadline := found.Add(5 * time.Second)
	for {
		mu.Lock()
		n, e := len(got), len(errs)
		mu.Unlock()
		if e > 0 {
			t.Fatalf("sdk.VerifyWebhook refused a delivery: %v", errs)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection.reauth_required within 5 s of the refresh that found the grant dead")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	ev := got[0]
	if ev.Type != "connection.reauth_required" || ev.Data.ConnectionID != id || ev.Data.Status != "expired" || ev.Data.Reason == "" {
		t.Errorf("event = %+v", ev)
	}
	t.Logf("reauth_required arrived %v after the refresh answered", when[0].Sub(found))
}

// Through the real gateway: an agent registers its endpoint, another agent
// cannot see it, and a consent at the OP then the deletion reach the
// receiver signed, in order, and show in the deliveries log.
func TestGatewayWebhooksEndToEnd(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	var (
		mu   sync.Mutex
		msgs []*sdk.WebhookEvent
		bad  []error
	)
	secretCh := make(chan string, 1)
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if secret == "" {
			secret = <-secretCh
		}
		ev, err := sdk.VerifyWebhook(secret, r.Header, body, 0)
		if err != nil {
			bad = append(bad, err)
		} else {
			msgs = append(msgs, ev)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	var hook map[string]any
	if st := s.rest(t, "POST", "/v1/webhooks", "/v1/webhooks", agentKey, map[string]any{"url": recv.URL}, &hook); st != 201 {
		t.Fatalf("create webhook: %d %v", st, hook)
	}
	secretCh <- hook["secret"].(string)
	hookID := hook["id"].(string)
	var list map[string][]map[string]any
	if st := s.rest(t, "GET", "/v1/webhooks", "/v1/webhooks", "other-agent-key-0001", nil, &list); st != 200 || len(list["webhooks"]) != 0 {
		t.Fatalf("agent-b lists %d %v", st, list)
	}
	var env map[string]any
	if st := s.rest(t, "DELETE", "/v1/webhooks/"+hookID, "/v1/webhooks/{id}", "other-agent-key-0001", nil, &env); st != 404 {
		t.Fatalf("agent-b deletes agent-a's endpoint: %d", st)
	}
	if st := s.rest(t, "GET", "/v1/webhooks", "/v1/webhooks", agentKey, nil, &list); st != 200 || len(list["webhooks"]) != 1 || list["webhooks"][0]["secret"] != nil {
		t.Fatalf("agent-a lists %d %v", st, list)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.h.broker.RunWorker(ctx, broker.WorkerOptions{Interval: time.Hour}) }()
	t.Cleanup(func() { cancel(); <-done })

	var grant map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "alice", "provider_name": "Example", "scopes": []string{"openid", "email", "offline_access"},
		"return_url": s.retURL}, &grant); st != 200 {
		t.Fatalf("request-connection %d %v", st, grant)
	}
	id := grant["connection_id"].(string)
	if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
		t.Fatalf("landing %v", q)
	}
	if st := s.rest(t, "DELETE", "/v1/connections/"+id, "/v1/connections/{connection_id}", agentKey, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(msgs)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d messages, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	if len(bad) > 0 || msgs[0].Type != "connection.active" || msgs[1].Type != "connection.deleted" ||
		msgs[0].Data.ConnectionID != id || msgs[0].Data.ClientName != "agent-a" || msgs[0].Data.UserID != "alice" {
		t.Errorf("received %+v, refused %v", msgs, bad)
	}
	mu.Unlock()
	// The receiver answered; the attempt is recorded right after.
	var ds map[string][]map[string]any
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ds = nil
		if st := s.rest(t, "GET", "/v1/webhooks/"+hookID+"/deliveries", "/v1/webhooks/{id}/deliveries", agentKey, nil, &ds); st != 200 || len(ds["deliveries"]) != 2 {
			t.Fatalf("deliveries: %d %v", st, ds)
		}
		if ds["deliveries"][0]["status"] == "delivered" && ds["deliveries"][1]["status"] == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries not recorded as delivered: %v", ds)
		}
	}
	did := ds["deliveries"][1]["id"].(string)
	if st := s.rest(t, "POST", "/v1/webhooks/"+hookID+"/deliveries/"+did+"/retry", "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", "other-agent-key-0001", nil, &env); st != 404 {
		t.Fatalf("agent-b retries: %d", st)
	}
	var rotated map[string]any
	if st := s.rest(t, "POST", "/v1/webhooks/"+hookID+"/rotate-secret", "/v1/webhooks/{id}/rotate-secret", agentKey, nil, &rotated); st != 200 ||
		rotated["secret"] == hook["secret"] || rotated["previous_secret_valid_until"] == nil {
		t.Fatalf("rotate: %d %v", st, rotated)
	}
	if st := s.rest(t, "DELETE", "/v1/webhooks/"+hookID, "/v1/webhooks/{id}", agentKey, nil, nil); st != 204 {
		t.Fatalf("delete webhook: %d", st)
	}
	for _, sec := range []string{hook["secret"].(string), rotated["secret"].(string)} {
		if strings.Contains(s.gwLogs.String(), sec) || strings.Contains(s.h.logs.String(), sec) {
			t.Fatal("a webhook secret reached the logs")
		}
	}
}
