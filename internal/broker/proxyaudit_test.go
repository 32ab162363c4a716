package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/localbroker"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/proxy"
	"github.com/dromos-dev/dromos/internal/proxyaudit"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
)

// proxyRows waits until the broker holds want proxy.call rows (the gateway
// sends its batch within a second) and returns them, oldest first; it
// fails the test on more.
func proxyRows(t *testing.T, s *stack, want int) []storage.AuditEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.h.broker.FlushAudit()
		all, err := s.h.store.ListAudit(context.Background(), storage.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var rows []storage.AuditEvent
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].Type == proxyaudit.EventType {
				rows = append(rows, all[i])
			}
		}
		if len(rows) > want {
			t.Fatalf("%d proxy.call rows, want %d: %+v", len(rows), want, rows)
		}
		if len(rows) == want {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d proxy.call rows after 10s, want %d", len(rows), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProxyCallAudited: a call through the gateway's proxy becomes exactly
// one proxy.call row in the broker's audit table, with the agent, the
// connection and its provider, method, host, path without the query,
// status, bytes each way and latency, and no query value, key or token
// anywhere in it. Another agent's attempt on the connection is audited
// as such. The broker refuses a batch from a non-gateway caller and a
// batch with one bad event, and stores nothing of either.
func TestProxyCallAudited(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		t.Run(map[bool]string{false: "gateway over HTTP", true: "gateway in process"}[inProcess], func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, dbURL string) { testProxyCallAudited(t, dbURL, inProcess) })
		})
	}
}

// inProcessGateway replaces s's gateway with one calling the broker in
// process (internal/localbroker), as dromos serve runs it.
func inProcessGateway(t *testing.T, s *stack) {
	clients, err := gateway.ParseClientKeys("agent-a:" + agentKey + ",agent-b:other-agent-key-0001")
	if err != nil {
		t.Fatal(err)
	}
	local, err := localbroker.New(s.h.broker, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{StateKeys: []state.Key{stateKey}, Clients: clients, Proxy: proxy.Config{AllowPrivate: true}},
		gateway.Deps{Logger: logging.New(s.gwLogs, slog.LevelDebug), Now: time.Now, Broker: local})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.HTTPHandler())
	t.Cleanup(srv.Close)
	s.gwURL = srv.URL
}

func testProxyCallAudited(t *testing.T, dbURL string, inProcess bool) {
	{
		api := newHeaderAPI(t, map[string]http.Header{"anthropic": {"X-Api-Key": {goodKey}}})
		s := newStackGateway(t, dbURL, func(c *gateway.Config) { c.Proxy.AllowPrivate = true })
		if inProcess {
			inProcessGateway(t, s)
		}
		provID := s.h.registerProvider(map[string]any{"name": "anthropic", "auth_mode": "api_key",
			"credential":    map[string]any{"injection": map[string]any{"header": "x-api-key"}},
			"api_base_urls": []string{api.srv.URL + "/anthropic"}})
		var conn struct {
			ConnectionID string `json:"connection_id"`
		}
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "anthropic", "return_url": s.retURL,
			"credentials": map[string]string{"api_key": goodKey}}, &conn); st != http.StatusOK {
			t.Fatalf("request-connection: %d", st)
		}
		const queryValue = "q-value-7c1d2e"
		call := func(key, path string) (int, int) {
			req, _ := http.NewRequest("POST", s.gwURL+"/v1/proxy/"+conn.ConnectionID+path, strings.NewReader(`{"n":1}`))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, len(body)
		}
		status, n := call(agentKey, "/v1/messages?secret="+queryValue+"&api_key="+goodKey)
		if status != http.StatusOK {
			t.Fatalf("proxied call: %d", status)
		}
		rows := proxyRows(t, s, 1)
		r := rows[0]
		want := map[string]string{"provider": "anthropic", "method": "POST", "host": strings.TrimPrefix(api.srv.URL, "http://"),
			"path": "/anthropic/v1/messages", "status": "200", "bytes_in": "7", "bytes_out": strconv.Itoa(n),
			"retried": "false", "ownership": "agent"}
		if r.Actor != "agent-a" || r.ConnectionID != conn.ConnectionID || r.ProviderID != provID {
			t.Fatalf("row: actor %q connection %q provider %q", r.Actor, r.ConnectionID, r.ProviderID)
		}
		for k, v := range want {
			if r.Detail[k] != v {
				t.Errorf("detail %s = %q, want %q", k, r.Detail[k], v)
			}
		}
		if ms, err := strconv.ParseFloat(r.Detail["duration_ms"], 64); err != nil || ms <= 0 || ms > 10000 {
			t.Errorf("duration_ms = %q", r.Detail["duration_ms"])
		}
		if age := time.Since(r.Time); age < 0 || age > time.Minute {
			t.Errorf("row time %v is not the call's", r.Time)
		}
		raw, _ := json.Marshal(r)
		for _, leak := range []string{queryValue, goodKey, agentKey, "secret="} {
			if strings.Contains(string(raw), leak) {
				t.Fatalf("the audit row holds %q: %s", leak, raw)
			}
		}

		// agent-b tries agent-a's connection: 404, and a row that says the
		// connection is not its.
		if status, _ := call("other-agent-key-0001", "/v1/messages"); status != http.StatusNotFound {
			t.Fatalf("another agent's connection: %d", status)
		}
		rows = proxyRows(t, s, 2)
		if r := rows[1]; r.Actor != "agent-b" || r.ConnectionID != conn.ConnectionID || r.Detail["ownership"] != "other_agent" || r.Detail["status"] != "404" {
			t.Fatalf("agent-b's attempt: %+v", r)
		}

		// Over gRPC (the stack's gateway over HTTP only): one more row.
		rowsSoFar := 2
		if !inProcess {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+agentKey)
			out, err := s.grpc.ProxyCall(ctx, &dromosv1.ProxyCallRequest{ConnectionId: conn.ConnectionID, Path: "v1/models", Query: "secret=" + queryValue})
			if err != nil || out.GetStatus() != http.StatusOK {
				t.Fatalf("ProxyCall: %v %v", out.GetStatus(), err)
			}
			rowsSoFar = 3
			r := proxyRows(t, s, rowsSoFar)[2]
			if r.Actor != "agent-a" || r.Detail["method"] != "GET" || r.Detail["path"] != "/anthropic/v1/models" || r.Detail["status"] != "200" ||
				strings.Contains(fmt.Sprint(r), queryValue) {
				t.Fatalf("gRPC call's row: %+v", r)
			}
		}

		// Straight to the broker: refused without the gateway mark, and a
		// batch with one bad event is refused whole.
		good := proxyaudit.Event{Time: time.Now(), Agent: "agent-a", ConnectionID: conn.ConnectionID, Method: "GET", Path: "/x", Status: 200}
		bad := good
		bad.Path = "/x\u0007"
		for name, tc := range map[string]struct {
			gateway bool
			events  []proxyaudit.Event
			status  int
		}{
			"no gateway mark": {false, []proxyaudit.Event{good}, http.StatusForbidden},
			"one bad event":   {true, []proxyaudit.Event{good, bad}, http.StatusBadRequest},
		} {
			raw, _ := json.Marshal(proxyaudit.Batch{Events: tc.events})
			req, _ := http.NewRequest("POST", s.h.srv.URL+"/audit/proxy-calls", strings.NewReader(string(raw)))
			req.Header.Set("Content-Type", "application/json")
			if tc.gateway {
				req.Header.Set("X-Dromos-Gateway", "1")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: %d %s, want %d", name, resp.StatusCode, body, tc.status)
			}
		}
		// Neither stored a row (proxyRows fails on one more).
		proxyRows(t, s, rowsSoFar)
	}
}

// TestProxyCallsNeedTheBrokerKey: with API keys configured, only a caller
// holding one (the gateway) may record proxy calls; a row for a
// connection the broker does not know says so.
func TestProxyCallsNeedTheBrokerKey(t *testing.T) {
	const key = "gateway-key-0123456789"
	h := newHarness(t, sqliteURL(t), func(c *broker.Config) {
		c.RequireAPIKey = true
		c.APIKeys = [][32]byte{sha(key)}
	})
	const unknown = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
	raw, _ := json.Marshal(proxyaudit.Batch{Events: []proxyaudit.Event{{Time: time.Now(), Agent: "agent-a",
		ConnectionID: unknown, Method: "GET", Host: "api.example.com", Path: "/v1/x", Status: 404}}})
	send := func(withKey bool) int {
		req, _ := http.NewRequest("POST", h.srv.URL+"/audit/proxy-calls", strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Dromos-Gateway", "1")
		if withKey {
			req.Header.Set("X-Api-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	rows := func() []storage.AuditEvent {
		h.broker.FlushAudit()
		all, err := h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: unknown})
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	if st := send(false); st != http.StatusUnauthorized || len(rows()) != 0 {
		t.Fatalf("without the key: %d, %d rows", st, len(rows()))
	}
	if st := send(true); st != http.StatusAccepted {
		t.Fatalf("with the key: %d", st)
	}
	got := rows()
	if len(got) != 1 || got[0].Type != proxyaudit.EventType || got[0].Detail["ownership"] != "no_connection" || got[0].ProviderID != "" {
		t.Fatalf("rows %+v", got)
	}
}
