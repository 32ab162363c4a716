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
