package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
)

// slackExtras are Slack-shaped extras with refresh tokens nested in an
// object and in an array, as a broker that did not filter them would pass
// them on. big checks that numbers are written again exactly.
func slackExtras() map[string]any {
	return map[string]any{
		"authed_user":   json.RawMessage(`{"id":"U2","access_token":"xoxp-user","refresh_token":"xoxe-1-user-rt","expires_in":43200,"big":12345678901234567890}`),
		"installations": json.RawMessage(`[{"id":"I1","refresh_token":"xoxe-1-array-rt"},"plain"]`),
		"team":          json.RawMessage(`{"id":"T1","note":"says refresh_token in a value"}`),
		"bot_user_id":   "U1",
	}
}

func slackToken(exposed bool) map[string]any {
	tok := activeToken("xoxb-bot")
	for k, v := range slackExtras() {
		tok[k] = v
	}
	if exposed {
		tok["refresh_token"] = "xoxe-1-bot-rt"
	}
	return tok
}

// A broker that does not expose refresh tokens sends no top-level
// refresh_token; a nested one in its answer (a broker that missed it) is
// dropped by the gateway on REST and gRPC, the rest of the extras intact.
func TestGatewayDropsNestedRefreshTokens(t *testing.T) {
	h := newHarness(t)
	id, _ := h.requestConnection(keyA)
	h.fb.set(id, "active", "", slackToken(false))
	for _, p := range []struct{ method, path, template string }{
		{"GET", "/v1/token/" + id, "/v1/token/{connection_id}"},
		{"POST", "/v1/refresh/" + id, "/v1/refresh/{connection_id}"},
	} {
		res := h.call(p.method, p.path, p.template, bearer(keyA), "")
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", p.method, res.status, res.body)
		}
		if strings.Contains(string(res.body), "xoxe-") || strings.Contains(string(res.body), `"refresh_token"`) {
			t.Fatalf("%s: a refresh token reached the agent: %s", p.method, res.body)
		}
		var got map[string]json.RawMessage
		res.decode(t, &got)
		if string(got["authed_user"]) != `{"access_token":"xoxp-user","big":12345678901234567890,"expires_in":43200,"id":"U2"}` ||
			string(got["installations"]) != `[{"id":"I1"},"plain"]` ||
			string(got["team"]) != `{"id":"T1","note":"says refresh_token in a value"}` ||
			string(got["bot_user_id"]) != `"U1"` || string(got["tenant"]) != `"contoso"` {
			t.Fatalf("%s: extras changed: %s", p.method, res.body)
		}
	}

	client, _ := h.grpcClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := client.GetToken(withKey(ctx, keyA), &dromosv1.GetTokenRequest{ConnectionId: id})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tok.GetExtras() {
		if strings.Contains(v, "xoxe-") || k == "refresh_token" {
			t.Fatalf("gRPC extra %s = %q", k, v)
		}
	}
	if tok.GetExtras()["authed_user"] != `{"access_token":"xoxp-user","big":12345678901234567890,"expires_in":43200,"id":"U2"}` {
		t.Fatalf("gRPC authed_user = %q", tok.GetExtras()["authed_user"])
	}
}

// A broker configured to expose refresh tokens sends the top-level one; the
// nested ones then pass through unchanged like every other extra.
func TestGatewayPassesRefreshTokensTheBrokerExposes(t *testing.T) {
	h := newHarness(t)
	id, _ := h.requestConnection(keyA)
	h.fb.set(id, "active", "", slackToken(true))
	res := h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), "")
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	var got map[string]json.RawMessage
	res.decode(t, &got)
	if string(got["refresh_token"]) != `"xoxe-1-bot-rt"` ||
		string(got["authed_user"]) != `{"id":"U2","access_token":"xoxp-user","refresh_token":"xoxe-1-user-rt","expires_in":43200,"big":12345678901234567890}` ||
		string(got["installations"]) != `[{"id":"I1","refresh_token":"xoxe-1-array-rt"},"plain"]` {
		t.Fatalf("%s", res.body)
	}
}
