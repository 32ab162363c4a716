package broker_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
)

// An agent with two keys (GATEWAY_API_KEYS names it twice, as during a key
// rotation) is one owner: a connection requested with the old key is read
// with the new one, and another agent still cannot see it.
func TestGatewayAgentKeyRotation(t *testing.T) {
	const oldKey, newKey, otherKey = "agent-a-old-key-0001", "agent-a-new-key-0002", "agent-b-key-00000003"
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStackGateway(t, dbURL, func(c *gateway.Config) {
			clients, err := gateway.ParseClientKeys("agent-a:" + oldKey + ",agent-a:" + newKey + ",agent-b:" + otherKey)
			if err != nil {
				t.Fatalf("two keys for one agent refused: %v", err)
			}
			c.Clients = clients
		})
		var grant map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", oldKey, map[string]any{
			"user_id": "alice", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &grant); st != 200 {
			t.Fatalf("request-connection with the old key: %d %v", st, grant)
		}
		id := grant["connection_id"].(string)
		if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
			t.Fatalf("landing %v", q)
		}
		var tok, env map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", newKey, nil, &tok); st != 200 || tok["access_token"] == "" {
			t.Fatalf("token with the new key: %d %v", st, tok)
		}
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", oldKey, nil, &tok); st != 200 {
			t.Fatalf("token with the old key during rotation: %d %v", st, tok)
		}
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", otherKey, nil, &env); st != 404 {
			t.Fatalf("another agent: %d %v", st, env)
		}
		c, err := s.h.store.GetConnection(t.Context(), id)
		if err != nil || c.ClientName != "agent-a" {
			t.Fatalf("owner = %q, %v; want agent-a", c.ClientName, err)
		}
	})
}

// doWith is harness.do with extra request headers.
func (h *harness) doWith(method, path string, hdr map[string]string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// anonymousGateway starts a second, anonymous gateway on s's broker and
// returns its URL.
func anonymousGateway(t *testing.T, s *stack) string {
	t.Helper()
	gw, err := gateway.New(gateway.Config{BrokerBaseURL: s.h.srv.URL, StateKeys: []state.Key{stateKey}, AllowAnonymous: true},
		gateway.Deps{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.HTTPHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// The attack: with GATEWAY_ALLOW_ANONYMOUS=true the gateway sent no client
// name and the broker applied no ownership check, so an anonymous caller
// holding (or guessing from logs) a keyed agent's connection id read its
// token. Anonymous callers are now one owner of their own.
func TestAnonymousGatewayIsAnOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		anonURL := anonymousGateway(t, s)
		var grant map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &grant); st != 200 {
			t.Fatalf("request-connection: %d %v", st, grant)
		}
		id := grant["connection_id"].(string)
		if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
			t.Fatalf("landing %v", q)
		}
		anon := &stack{h: s.h, gwURL: anonURL, spec: s.spec}
		var env map[string]any
		for _, call := range []struct{ method, path, template string }{
			{"GET", "/v1/check-connection/" + id, "/v1/check-connection/{connection_id}"},
			{"GET", "/v1/token/" + id, "/v1/token/{connection_id}"},
			{"POST", "/v1/refresh/" + id, "/v1/refresh/{connection_id}"},
			{"DELETE", "/v1/connections/" + id, "/v1/connections/{connection_id}"},
		} {
			if st := anon.rest(t, call.method, call.path, call.template, "", nil, &env); st != 404 {
				t.Fatalf("anonymous %s %s: %d %v, want 404", call.method, call.template, st, env)
			}
		}
		// Nothing changed: the connection is still agent-a's and active.
		if c, err := s.h.store.GetConnection(t.Context(), id); err != nil || c.Status != storage.StatusActive || c.ClientName != "agent-a" {
			t.Fatalf("after the anonymous calls: %+v %v", c, err)
		}

		// Anonymous callers own what they create, and agent-a cannot read it.
		var mine map[string]any
		if st := anon.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", "", map[string]any{
			"user_id": "bob", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &mine); st != 200 {
			t.Fatalf("anonymous request-connection: %d %v", st, mine)
		}
		anonID := mine["connection_id"].(string)
		if c, err := s.h.store.GetConnection(t.Context(), anonID); err != nil || c.ClientName != gateway.AnonymousClient {
			t.Fatalf("anonymous connection owner = %q, %v", c.ClientName, err)
		}
		if st := anon.rest(t, "GET", "/v1/check-connection/"+anonID, "/v1/check-connection/{connection_id}", "", nil, &env); st != 200 {
			t.Fatalf("anonymous reads its own: %d %v", st, env)
		}
		if st := s.rest(t, "GET", "/v1/check-connection/"+anonID, "/v1/check-connection/{connection_id}", agentKey, nil, &env); st != 404 {
			t.Fatalf("agent-a reads the anonymous one: %d", st)
		}
	})
}

// The broker itself refuses a gateway call without an owner, whatever the
// gateway in front of it does.
func TestBrokerRefusesGatewayCallWithoutOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		c := s.h.consentOnly("example", []string{"openid"}, s.retURL)
		gw := map[string]string{"X-Dromos-Gateway": "1"}
		for _, call := range []struct{ method, path string }{
			{"GET", "/connections/" + c.ConnectionID},
			{"GET", "/connections/" + c.ConnectionID + "/token"},
			{"POST", "/connections/" + c.ConnectionID + "/refresh"},
			{"DELETE", "/connections/" + c.ConnectionID},
			{"GET", "/connections"},
		} {
			var env envelope
			if st := s.h.doWith(call.method, call.path, gw, nil, &env); st != http.StatusForbidden || env.Code != "owner_required" {
				t.Fatalf("%s %s as a gateway without client_name: %d %+v, want 403 owner_required", call.method, call.path, st, env)
			}
		}
		var env envelope
		if st := s.h.doWith("POST", "/auth/consent-spec", gw, map[string]any{"workspace_id": "ws-1", "user_id": "u-1",
			"provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &env); st != http.StatusForbidden || env.Code != "owner_required" {
			t.Fatalf("consent-spec as a gateway without client_name: %d %+v", st, env)
		}
		// The pending connection is untouched and no other was created.
		if st := s.h.status(c.ConnectionID); st != storage.StatusPending {
			t.Fatalf("status after refused calls: %s", st)
		}
		if all, err := s.h.store.ListConnections(t.Context(), storage.ConnectionFilter{}); err != nil || len(all) != 1 {
			t.Fatalf("connections after refused consent: %d %v", len(all), err)
		}
		// An operator calling the broker directly keeps the unfiltered view.
		var view map[string]any
		if st := s.h.do("GET", "/connections/"+c.ConnectionID, nil, &view); st != 200 {
			t.Fatalf("operator read: %d %v", st, view)
		}
	})
}

// The attack: every agent behind a gateway shared the broker's per-address
// consent bucket, so one agent asking for consents in a loop kept every
// other agent at 429. A keyed gateway call is now counted per agent.
func TestBrokerConsentLimitIsPerAgentBehindAGateway(t *testing.T) {
	const brokerAPIKey = "broker-key-0123456789"
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStackGateway(t, dbURL, func(c *gateway.Config) {
			c.BrokerAPIKey = brokerAPIKey
			c.ConsentRatePerMinute = 0 // the broker's own limit is under test
		}, func(c *broker.Config) {
			c.APIKeys = [][32]byte{sha256.Sum256([]byte(brokerAPIKey))}
			c.ConsentRatePerMinute = 5
		})
		ask := func(key string) int {
			var out map[string]any
			return s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", key, map[string]any{
				"user_id": "u", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &out)
		}
		limited := false
		for range 10 {
			if st := ask(agentKey); st == http.StatusTooManyRequests {
				limited = true
				break
			} else if st != 200 {
				t.Fatalf("agent-a: %d", st)
			}
		}
		if !limited {
			t.Fatal("agent-a was never limited at 5 consents a minute")
		}
		if st := ask("other-agent-key-0001"); st != 200 {
			t.Fatalf("agent-b after agent-a's flood: %d, want 200", st)
		}
		// An unkeyed caller is still counted per address.
		for i := range 6 {
			st := s.h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws", "client_name": "agent-c",
				"provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, nil)
			if i < 5 && st != 200 || i == 5 && st != http.StatusTooManyRequests {
				t.Fatalf("unkeyed consent %d: %d", i+1, st)
			}
		}
	})
}

// The attack: an agent asking for consents it never completes piled up
// pending (then failed) rows without bound. Each client now has at most
// MaxPendingPerClient consents waiting.
func TestMaxPendingPerClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStackWith(t, dbURL, func(c *broker.Config) { c.MaxPendingPerClient = 3 })
		ask := func(client string) (int, envelope) {
			var env envelope
			st := s.h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": client, "client_name": client,
				"user_id": "u", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &env)
			return st, env
		}
		for i := range 3 {
			if st, env := ask("agent-a"); st != 200 {
				t.Fatalf("consent %d: %d %+v", i+1, st, env)
			}
		}
		st, env := ask("agent-a")
		if st != http.StatusTooManyRequests || env.Code != "too_many_pending" || !strings.Contains(env.Message, "MAX_PENDING_PER_CLIENT") {
			t.Fatalf("4th pending consent: %d %+v, want 429 too_many_pending", st, env)
		}
		if all, err := s.h.store.ListConnections(t.Context(), storage.ConnectionFilter{ClientName: "agent-a"}); err != nil || len(all) != 3 {
			t.Fatalf("agent-a has %d connections after the refusal (%v), want 3", len(all), err)
		}
		if st, env := ask("agent-b"); st != 200 {
			t.Fatalf("agent-b: %d %+v", st, env)
		}
		// Through the gateway the agent sees the same answer.
		var out map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "u", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &out); st != 429 || out["code"] != "too_many_pending" {
			t.Fatalf("through the gateway: %d %v", st, out)
		}
		// Once the consents have run out, the client may ask again.
		s.h.clock.Advance(11 * time.Minute)
		if st, env := ask("agent-a"); st != 200 {
			t.Fatalf("after the pending consents expired: %d %+v", st, env)
		}
	})
}

// Expired and failed consents were never deleted. The worker now purges
// connections that failed before ever being active once
// ConnectionRetention has passed, with one audit event saying how many,
// and keeps every connection that was once active.
func TestPurgeNeverActiveConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStackWith(t, dbURL, func(c *broker.Config) { c.ConnectionRetention = 168 * time.Hour })
		ctx := t.Context()
		abandoned := s.h.consentOnly("example", []string{"openid"}, s.retURL)
		var grant map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &grant); st != 200 {
			t.Fatalf("request-connection: %d %v", st, grant)
		}
		active := grant["connection_id"].(string)
		if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
			t.Fatalf("landing %v", q)
		}
		s.h.clock.Advance(11 * time.Minute)
		if n, err := s.h.broker.CleanupPending(ctx); err != nil || n != 1 {
			t.Fatalf("CleanupPending: %d %v", n, err)
		}
		if st := s.h.status(abandoned.ConnectionID); st != storage.StatusFailed {
			t.Fatalf("abandoned consent: %s", st)
		}
		// Within the retention nothing goes.
		s.h.clock.Advance(167 * time.Hour)
		if n, err := s.h.broker.PurgeConnections(ctx); err != nil || n != 0 {
			t.Fatalf("purge within retention: %d %v", n, err)
		}
		s.h.clock.Advance(2 * time.Hour)
		if n, err := s.h.broker.PurgeConnections(ctx); err != nil || n != 1 {
			t.Fatalf("purge after retention: %d %v, want 1", n, err)
		}
		if _, err := s.h.store.GetConnection(ctx, abandoned.ConnectionID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("abandoned consent survived: %v", err)
		}
		if c, err := s.h.store.GetConnection(ctx, active); err != nil || c.Status != storage.StatusActive {
			t.Fatalf("active connection after the purge: %+v %v", c, err)
		}
		events, err := s.h.store.ListAudit(ctx, storage.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var summary []storage.AuditEvent
		for _, e := range events {
			if e.Type == "connections.purged" {
				summary = append(summary, e)
			}
		}
		if len(summary) != 1 || summary[0].Detail["count"] != "1" || summary[0].Detail["retention"] != "168h0m0s" {
			t.Fatalf("purge audit events: %+v", summary)
		}
	})
}
