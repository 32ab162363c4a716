package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// hookBroker records the webhook calls the CLI makes and answers like the
// broker's webhook API.
type hookBroker struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []string // "METHOD path?query body"
}

func newHookBroker(t *testing.T) *hookBroker {
	f := &hookBroker{}
	ep := `{"id":"ep_1","client_name":"","url":"https://ops.example.com/hook","events":["connection.deleted"],"enabled":true,"created_at":"2026-12-04T10:00:00Z"`
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(body)))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/webhooks":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, ep+`,"secret":"whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="}`)
		case r.Method == "GET" && r.URL.Path == "/webhooks":
			_, _ = io.WriteString(w, `{"webhooks":[`+ep+`},{"id":"ep_2","client_name":"agent-a","url":"https://a.example/h","events":[],"enabled":false,"disabled_reason":"failing","created_at":"2026-12-04T10:00:00Z"}]}`)
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/enable"):
			_, _ = io.WriteString(w, ep+`}`)
		case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/deliveries"):
			_, _ = io.WriteString(w, `{"deliveries":[{"id":"dlv_1","event_id":"msg_1","event_type":"connection.deleted","connection_id":"c1","sequence":3,
				"status":"pending","attempts":2,"response_status":500,"latency_ms":12,"error":"status","next_attempt_at":"2026-12-04T10:05:00Z","created_at":"2026-12-04T10:00:00Z"}]}`)
		case r.Method == "DELETE":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"code":"not_found","message":"webhook endpoint not found"}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *hookBroker) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

func TestWebhooksCommands(t *testing.T) {
	f := newHookBroker(t)
	env := []string{"DROMOS_BROKER_URL=" + f.srv.URL, "DROMOS_API_KEY=k"}

	out, errOut, code := runCLI(t, env, "webhooks", "add", "https://ops.example.com/hook", "--events", "connection.deleted")
	if code != 0 || !strings.Contains(out, "whsec_c2VjcmV0") || !strings.Contains(out, "(global)") {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	var body map[string]any
	call := f.last()
	if !strings.HasPrefix(call, "POST /webhooks {") || json.Unmarshal([]byte(strings.TrimPrefix(call, "POST /webhooks ")), &body) != nil ||
		body["url"] != "https://ops.example.com/hook" || body["events"].([]any)[0] != "connection.deleted" {
		t.Fatalf("add sent %q (a global endpoint has no client_name)", call)
	}

	out, _, code = runCLI(t, env, "webhooks", "list")
	if code != 0 || !hasRow(out, "ep_1", "(global)", "https://ops.example.com/hook", "connection.deleted", "yes") ||
		!hasRow(out, "ep_2", "agent-a", "https://a.example/h", "-", "no", "(failing)") || strings.Contains(out, "whsec_") {
		t.Fatalf("list:\n%s", out)
	}
	if _, _, code = runCLI(t, env, "webhooks", "enable", "ep_2", "--client", "agent-a"); code != 0 || f.last() != "POST /webhooks/ep_2/enable?client_name=agent-a" {
		t.Fatalf("enable: exit %d, sent %q", code, f.last())
	}
	out, _, code = runCLI(t, env, "webhooks", "deliveries", "ep_1")
	if code != 0 || !hasRow(out, "dlv_1", "connection.deleted", "c1", "pending", "2", "500", "status") {
		t.Fatalf("deliveries:\n%s", out)
	}
	if _, _, code = runCLI(t, env, "webhooks", "remove", "ep_1"); code != 0 || f.last() != "DELETE /webhooks/ep_1" {
		t.Fatalf("remove: exit %d, sent %q", code, f.last())
	}
	if _, errOut, code = runCLI(t, env, "webhooks", "retry", "ep_9", "dlv_9"); code != 1 || !strings.Contains(errOut, "webhook endpoint not found") {
		t.Fatalf("retry of an unknown endpoint: exit %d %q", code, errOut)
	}
	if _, errOut, code = runCLI(t, env, "webhooks", "remove"); code != 1 || !strings.Contains(errOut, "expected one endpoint ID") {
		t.Fatalf("remove without ID: exit %d %q", code, errOut)
	}
}
