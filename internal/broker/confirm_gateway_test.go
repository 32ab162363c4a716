package broker_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// landingQuery waits for the query the agent's pages received.
func (s *stack) landingQuery(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-s.landing:
		return q
	case <-time.After(10 * time.Second):
		t.Fatal("the browser never reached the agent's page")
		return nil
	}
}

// Through the gateway, against an independent OP: a connection that
// requires confirmation waits in pending (detail awaiting_confirmation)
// and serves no token; the application confirming another user fails it;
// confirming its own user and sending the browser on activates it.
func TestGatewayConfirmConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		request := func(user string) (string, *testenv.Browser, string) {
			t.Helper()
			var grant map[string]any
			if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
				"user_id": user, "provider_name": "example", "scopes": []string{"openid", "offline_access"},
				"return_url": s.retURL, "confirm_url": strings.TrimSuffix(s.retURL, "/back") + "/confirm"}, &grant); st != 200 {
				t.Fatalf("request-connection %d %v", st, grant)
			}
			id := grant["connection_id"].(string)
			b := testenv.NewBrowser(t)
			page, body, _ := b.Get(grant["authUrl"].(string))
			s.op.LoginAtOP(b, page, body)
			q := s.landingQuery(t)
			if q.Get("connection_id") != id || q.Get("confirmation") == "" || q.Has("status") {
				t.Fatalf("confirm_url got %v", q)
			}
			var status map[string]any
			s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &status)
			if status["status"] != "pending" || status["detail"] != "awaiting_confirmation" || status["reason"] != "awaiting_user" {
				t.Fatalf("check-connection while awaiting confirmation: %v", status)
			}
			var env map[string]any
			if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", agentKey, nil, &env); st != 409 || env["code"] != "not_ready" {
				t.Fatalf("token while awaiting confirmation: %d %v", st, env)
			}
			return id, b, q.Get("confirmation")
		}
		confirmAs := func(value, user, key string, out any) int {
			t.Helper()
			return s.rest(t, "POST", "/v1/confirm-connection", "/v1/confirm-connection", key,
				map[string]any{"confirmation": value, "user_id": user}, out)
		}

		// The attack.
		id, b, value := request("mallory")
		_ = b // alice's browser: the application there confirms as alice
		var env map[string]any
		if st := confirmAs(value, "alice", "other-agent-key-0001", &env); st != 400 || env["code"] != "invalid_confirmation" {
			t.Fatalf("another agent confirming: %d %v", st, env)
		}
		if st := confirmAs(value, "alice", agentKey, &env); st != 409 || env["code"] != "user_mismatch" {
			t.Fatalf("confirm as alice: %d %v", st, env)
		}
		var status map[string]any
		s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &status)
		if status["status"] != "failed" || status["reason"] != "user_mismatch" {
			t.Fatalf("after the mismatch: %v", status)
		}
		s.h.assertNoToken(id)

		// The honest path.
		id, b, value = request("mallory")
		var ok map[string]any
		if st := confirmAs(value, "mallory", agentKey, &ok); st != 200 || ok["connection_id"] != id || ok["status"] != "pending" {
			t.Fatalf("confirm as mallory: %d %v", st, ok)
		}
		b.Get(ok["continue_url"].(string))
		if q := s.landingQuery(t); q.Get("status") != "success" || q.Get("connection_id") != id {
			t.Fatalf("return_url got %v", q)
		}
		var tok map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 || tok["access_token"] == "" {
			t.Fatalf("token after confirmation: %d %v", st, tok)
		}
		for _, secret := range []string{value, ok["continue_url"].(string), tok["access_token"].(string)} {
			if strings.Contains(s.gwLogs.String(), secret) || strings.Contains(s.h.logs.String(), secret) {
				t.Fatal("a confirmation value or token reached the logs")
			}
		}
	})
}

// An agent whose key requires confirmation cannot leave it out.
func TestGatewayKeyRequiresConfirmation(t *testing.T) {
	const strictKey = "strict-agent-key-0001"
	s := newStackGateway(t, sqliteURL(t), func(c *gateway.Config) {
		clients, err := gateway.ParseClientKeys("strict:" + strictKey + ";require-confirmation")
		if err != nil {
			t.Fatal(err)
		}
		c.Clients = clients
	})
	body := map[string]any{"user_id": "mallory", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}
	var env map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", strictKey, body, &env); st != 400 ||
		!strings.Contains(env["message"].(string), "confirm_url") {
		t.Fatalf("without confirm_url: %d %v", st, env)
	}
	body["confirm_url"] = strings.TrimSuffix(s.retURL, "/back") + "/confirm"
	var grant map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", strictKey, body, &grant); st != 200 {
		t.Fatalf("with confirm_url: %d %v", st, grant)
	}
	c, err := s.h.store.GetConnection(t.Context(), grant["connection_id"].(string))
	if err != nil || c.ConfirmURL != body["confirm_url"] {
		t.Fatalf("stored confirm_url %q (%v)", c.ConfirmURL, err)
	}
}

// expected_identity passes through the gateway: the OP's test user is not
// "nobody", so the connection fails with identity_mismatch.
func TestGatewayExpectedIdentity(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	var grant map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "alice", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL,
		"expected_identity": map[string]any{"sub": "nobody"}}, &grant); st != 200 {
		t.Fatalf("request-connection %d %v", st, grant)
	}
	id := grant["connection_id"].(string)
	if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "error" || q.Get("error") != "identity_mismatch" {
		t.Fatalf("landing %v", q)
	}
	var status map[string]any
	s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &status)
	if status["status"] != "failed" || status["reason"] != "identity_mismatch" {
		t.Fatalf("check-connection %v", status)
	}
	var env map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "alice", "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL,
		"expected_identity": map[string]any{"email": "not-an-address"}}, &env); st != 400 {
		t.Fatalf("malformed expected_identity: %d %v", st, env)
	}
}
