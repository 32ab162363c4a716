package broker_test

import (
	"testing"

	"github.com/dromos-dev/dromos/internal/broker"
)

// consentAs connects alice's account through the gateway as the agent with
// key and returns the connection id.
func (s *stack) consentAs(t *testing.T, key string) string {
	t.Helper()
	var grant map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", key, map[string]any{
		"user_id": "alice", "provider_name": "example", "scopes": []string{"openid", "email"},
		"return_url": s.retURL}, &grant); st != 200 {
		t.Fatalf("request-connection %d %v", st, grant)
	}
	if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
		t.Fatalf("consent %v", q)
	}
	return grant["connection_id"].(string)
}

// The id_token stays with the broker: token answers leave it out unless
// the agent has the id-token option, the broker caller asks with
// id_token=true, or the operator set EXPOSE_ID_TOKEN.
func TestIDTokenOnlyWhenAskedFor(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	const otherKey = "other-agent-key-0001" // agent-b: no id-token option
	id := s.consentAs(t, otherKey)
	var tok map[string]any
	if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", otherKey, nil, &tok); st != 200 || tok["access_token"] == nil {
		t.Fatalf("token %d %v", st, tok)
	}
	if _, ok := tok["id_token"]; ok {
		t.Fatalf("agent without the id-token option got an id_token: %v", tok)
	}
	direct := map[string]any{}
	if st := s.h.do("GET", "/connections/"+id+"/token", nil, &direct); st != 200 || direct["id_token"] != nil {
		t.Fatalf("broker token read without id_token=true: %d %v", st, direct)
	}
	if st := s.h.do("GET", "/connections/"+id+"/token?id_token=true", nil, &direct); st != 200 || direct["id_token"] == nil {
		t.Fatalf("broker token read with id_token=true: %d %v", st, direct)
	}
	if st := s.h.do("GET", "/connections/"+id+"/token?id_token=maybe", nil, &direct); st != 400 {
		t.Fatalf("id_token=maybe: %d, want 400", st)
	}
	// The verified identity is on the connection for everyone.
	var conn map[string]any
	if st := s.h.do("GET", "/connections/"+id, nil, &conn); st != 200 || conn["subject"] == nil {
		t.Fatalf("connection %d %v", st, conn)
	}

	idA := s.consentAs(t, agentKey) // agent-a has the id-token option
	tok = map[string]any{}
	if st := s.rest(t, "GET", "/v1/token/"+idA, "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 || tok["id_token"] == nil {
		t.Fatalf("agent with the id-token option: %d %v", st, tok)
	}
}

func TestExposeIDTokenForEveryone(t *testing.T) {
	s := newStackWith(t, sqliteURL(t), func(c *broker.Config) { c.ExposeIDToken = true })
	id := s.consentAs(t, "other-agent-key-0001")
	var tok map[string]any
	if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", "other-agent-key-0001", nil, &tok); st != 200 || tok["id_token"] == nil {
		t.Fatalf("EXPOSE_ID_TOKEN: %d %v", st, tok)
	}
}
