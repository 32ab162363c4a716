package broker_test

import (
	"context"
	"slices"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// TestReconnectKeepsIDAndRefusesAnotherAccount: an expired connection is
// reconnected through the gateway under the same id by the same account; a
// different account's consent is refused.
func TestReconnectKeepsIDAndRefusesAnotherAccount(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	request := func(body map[string]any) (int, map[string]any) {
		var out map[string]any
		st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, body, &out)
		return st, out
	}
	base := func() map[string]any {
		return map[string]any{"user_id": "alice", "provider_name": "example", "scopes": []string{"openid", "offline_access"}, "return_url": s.retURL}
	}
	_, grant := request(base())
	id := grant["connection_id"].(string)
	if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
		t.Fatalf("first consent %v", q)
	}
	first, _ := s.h.store.GetConnection(context.Background(), id)

	// Naming an active connection starts a step-up (stepup_test.go), not
	// a reconnect: the connection stays active.
	body := base()
	body["connection_id"] = id
	if st, out := request(body); st != 200 || out["connection_id"] != id {
		t.Fatalf("request naming an active connection: %d %v", st, out)
	}
	if c, _ := s.h.store.GetConnection(context.Background(), id); c.Status != storage.StatusActive {
		t.Fatalf("connection %s after a step-up started, want active", c.Status)
	}
	expire := func() {
		_, err := s.h.store.UpdateConnection(context.Background(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Status, c.StatusReason = storage.StatusExpired, "invalid_grant"
			return c, storage.TokenChange{Delete: true}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	expire()
	st, again := request(body)
	if st != 200 || again["connection_id"] != id {
		t.Fatalf("reconnect: %d %v", st, again)
	}
	if q := s.consentAtOP(t, again["authUrl"].(string)); q.Get("status") != "success" || q.Get("connection_id") != id {
		t.Fatalf("reconnect consent %v", q)
	}
	var tok map[string]any
	if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 {
		t.Fatalf("token after reconnect: %d", st)
	}

	// Another agent cannot reconnect it.
	var env map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", "other-agent-key-0001", body, &env); st != 404 {
		t.Fatalf("other client reconnect: %d %v", st, env)
	}

	// A different account at the provider is refused, also when the
	// reconnect leaves openid out: the broker asks for it anyway.
	expire()
	body["scopes"] = []string{"offline_access"}
	_, third := request(body)
	if scopes, _ := third["scopes"].([]any); !slices.Contains(scopes, any("openid")) {
		t.Fatalf("reconnect of a bound connection without openid: scopes %v", third["scopes"])
	}
	b := testenv.NewBrowser(t)
	page, html, _ := b.Get(third["authUrl"].(string))
	s.op.LoginAs(b, page, html, testenv.SecondUser)
	q := <-s.landing
	if q.Get("status") != "error" || q.Get("error") != "identity_mismatch" {
		t.Fatalf("different account: %v", q)
	}
	after, _ := s.h.store.GetConnection(context.Background(), id)
	if after.Subject != first.Subject || after.Status == storage.StatusActive {
		t.Fatalf("identity changed or connection active: %+v", after)
	}
	s.h.assertNoToken(id)
}
