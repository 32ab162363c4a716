package broker_test

import (
	"testing"

	"github.com/dromos-dev/dromos/internal/gateway"
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
