package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dromos-dev/dromos/internal/proxyaudit"
)

// TestProxyCallsReachTheBrokerAsAuditRecords: every proxied call, the
// refused ones included, is one record sent to the broker, with no query
// value or token, at the latest when the gateway closes; a call after
// Close is dropped and counted.
func TestProxyCallsReachTheBrokerAsAuditRecords(t *testing.T) {
	h, api, id := proxyHarness(t)
	var (
		mu   sync.Mutex
		sent []proxyaudit.Event
		raw  strings.Builder
	)
	h.fb.mu.Lock()
	prev := h.fb.intercept
	h.fb.mu.Unlock()
	h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "POST" && r.URL.Path == "/audit/proxy-calls" {
			var b proxyaudit.Batch
			if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
				t.Errorf("batch: %v", err)
			}
			mu.Lock()
			sent = append(sent, b.Events...)
			enc, _ := json.Marshal(b)
			raw.Write(enc)
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			return true
		}
		return prev(w, r)
	})

	ok := h.rawCall("GET", "/v1/proxy/"+id+"/users/me?q=secret-query-value", bearer(keyA), "")
	escape := h.rawCall("GET", "/v1/proxy/"+id+"/a%2fb", bearer(keyA), "")
	other := h.rawCall("GET", "/v1/proxy/"+id+"/users/me", bearer(keyB), "")
	if ok.status != 200 || escape.status != 400 || other.status != 404 {
		t.Fatalf("calls answered %d, %d, %d", ok.status, escape.status, other.status)
	}
	h.gw.Close(context.Background())

	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 3 {
		t.Fatalf("%d records sent, want 3: %+v", len(sent), sent)
	}
	host := strings.TrimPrefix(api.srv.URL, "http://")
	want := []struct {
		agent, host, path string
		status            int
	}{
		{"agent-a", host, "/api/users/me", 200},
		{"agent-a", "", "", 400},
		{"agent-b", "", "", 404},
	}
	for i, w := range want {
		e := sent[i]
		if e.Agent != w.agent || e.ConnectionID != id || e.Method != "GET" || e.Host != w.host || e.Path != w.path || e.Status != w.status {
			t.Errorf("record %d: %+v, want %+v", i, e, w)
		}
	}
	if sent[0].Provider != "google" || sent[0].BytesOut == 0 || sent[0].Time.IsZero() {
		t.Errorf("record 0: %+v", sent[0])
	}
	for _, leak := range []string{"secret-query-value", "tok-1", keyA, keyB} {
		if strings.Contains(raw.String(), leak) {
			t.Fatalf("a record holds %q", leak)
		}
	}

	mu.Unlock()
	h.rawCall("GET", "/v1/proxy/"+id+"/users/me", bearer(keyA), "")
	mu.Lock()
	if n := droppedAudit(t, h, "shutdown"); n != 1 || len(sent) != 3 {
		t.Fatalf("a call after Close: %v dropped at shutdown, %d records sent", n, len(sent))
	}
}

// droppedAudit reads gateway_proxy_audit_dropped_total{reason}.
func droppedAudit(t *testing.T, h *harness, reason string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gateway_proxy_audit_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
