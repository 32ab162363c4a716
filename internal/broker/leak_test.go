package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// TestNoSecretInLogsOrAudit runs the whole flow through the gateway with
// debug logging everywhere, then looks for every secret that passed
// through: access, refresh and id tokens, the authorization code, the
// state, the client secret and both API keys.
func TestNoSecretInLogsOrAudit(t *testing.T) {
	s := newStackWith(t, sqliteURL(t), func(c *broker.Config) { c.ExposeRefreshToken = true })
	var grant map[string]any
	s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "alice", "provider_name": "example", "scopes": []string{"openid", "email", "offline_access"},
		"return_url": s.retURL}, &grant)
	id := grant["connection_id"].(string)

	// The user's browser, recording the callback URL to learn the code.
	var code string
	b := testenv.NewBrowser(t)
	b.Client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/auth/callback" {
			code = req.URL.Query().Get("code")
		}
		return nil
	}
	page, body, _ := b.Get(grant["authUrl"].(string))
	s.op.LoginAtOP(b, page, body)
	<-s.landing
	if code == "" {
		t.Fatal("no code seen")
	}
	tok := map[string]any{}
	s.h.do("GET", "/connections/"+id+"/token?id_token=true", nil, &tok)
	var fresh map[string]any
	s.rest(t, "POST", "/v1/refresh/"+id, "/v1/refresh/{connection_id}", agentKey, nil, &fresh)

	secrets := map[string]string{
		"access token": tok["access_token"].(string), "refreshed access token": fresh["access_token"].(string),
		"id token": tok["id_token"].(string), "code": code, "state": grant["state"].(string),
		"client secret": s.op.ClientSecret, "agent API key": agentKey,
	}
	if rt, _ := tok["refresh_token"].(string); rt != "" {
		secrets["refresh token"] = rt
	} else {
		t.Fatal("no refresh token to look for")
	}
	s.h.broker.FlushAudit()
	events, err := s.h.store.ListAudit(context.Background(), storage.AuditFilter{Limit: 1000})
	if err != nil || len(events) == 0 {
		t.Fatalf("audit: %d %v", len(events), err)
	}
	haystacks := map[string]string{"broker log": s.h.logs.String(), "gateway log": s.gwLogs.String(), "audit rows": toJSON(events)}
	if !strings.Contains(s.h.logs.String(), `"level":"DEBUG"`) {
		t.Fatal("broker did not log at debug level; the test would prove nothing")
	}
	for where, text := range haystacks {
		for what, secret := range secrets {
			if len(secret) < 8 {
				t.Fatalf("%s too short to search for", what)
			}
			if strings.Contains(text, secret) {
				t.Errorf("%s contains the %s", where, what)
			}
		}
	}
}
