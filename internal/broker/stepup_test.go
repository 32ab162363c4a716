package broker_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// stepUpStack is a gateway stack with one active connection of agent-a
// (openid offline_access) and helpers to step it up.
type stepUpStack struct {
	*stack
	id  string
	tok string // the access token the first consent gave
}

func newStepUpStack(t *testing.T, dbURL string) *stepUpStack {
	s := &stepUpStack{stack: newStack(t, dbURL)}
	var grant map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "alice", "provider_name": "example", "scopes": []string{"openid", "offline_access"}, "return_url": s.retURL}, &grant); st != 200 {
		t.Fatalf("request-connection %d %v", st, grant)
	}
	s.id = grant["connection_id"].(string)
	if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
		t.Fatalf("first consent %v", q)
	}
	s.tok = s.token(t)
	return s
}

// stepUp asks the gateway to add scopes to the connection as key.
func (s *stepUpStack) stepUp(t *testing.T, key string, scopes ...string) (int, map[string]any) {
	t.Helper()
	var out map[string]any
	st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", key, map[string]any{
		"user_id": "alice", "provider_name": "example", "scopes": scopes, "return_url": s.retURL, "connection_id": s.id}, &out)
	return st, out
}

func (s *stepUpStack) token(t *testing.T) string {
	t.Helper()
	var tok map[string]any
	if st := s.rest(t, "GET", "/v1/token/"+s.id, "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	return tok["access_token"].(string)
}

func (s *stepUpStack) check(t *testing.T) map[string]any {
	t.Helper()
	var out map[string]any
	if st := s.rest(t, "GET", "/v1/check-connection/"+s.id, "/v1/check-connection/{connection_id}", agentKey, nil, &out); st != 200 {
		t.Fatalf("check-connection: %d %v", st, out)
	}
	return out
}

func (s *stepUpStack) conn(t *testing.T) storage.Connection {
	t.Helper()
	c, err := s.h.store.GetConnection(context.Background(), s.id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *stepUpStack) auditTypes(t *testing.T) []string {
	t.Helper()
	s.h.broker.Close() // flushes the audit queue
	events, err := s.h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: s.id})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	return types
}

// TestStepUpCompletes: adding scopes to an active connection keeps its id,
// keeps serving the old token until the new consent completes, then
// serves the new token with the union of the scopes.
func TestStepUpCompletes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStepUpStack(t, dbURL)
		before := s.conn(t)

		st, grant := s.stepUp(t, agentKey, "email", "profile")
		if st != 200 || grant["connection_id"] != s.id {
			t.Fatalf("step-up: %d %v", st, grant)
		}
		want := []string{"openid", "offline_access", "email", "profile"}
		if got := toStrings(grant["scopes"]); !slices.Equal(got, want) {
			t.Fatalf("step-up asks for %v, want the union %v", got, want)
		}
		// Until the user consents, nothing changes for readers.
		if c := s.conn(t); c.Status != storage.StatusActive || !slices.Equal(c.Scopes, before.Scopes) || c.Version != before.Version {
			t.Fatalf("connection changed by a pending step-up: %+v", c)
		}
		if tok := s.token(t); tok != s.tok {
			t.Fatal("a pending step-up changed the token served")
		}
		if chk := s.check(t); chk["status"] != "active" || stepUpField(chk, "status") != "pending" {
			t.Fatalf("check-connection during the step-up: %v", chk)
		}

		if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" || q.Get("connection_id") != s.id {
			t.Fatalf("step-up consent landed with %v", q)
		}
		c := s.conn(t)
		if c.Status != storage.StatusActive || !slices.Equal(c.Scopes, want) || c.Subject != before.Subject {
			t.Fatalf("after the step-up: status %s scopes %v subject %q", c.Status, c.Scopes, c.Subject)
		}
		if tok := s.token(t); tok == s.tok {
			t.Fatal("the old token is still served after the step-up completed")
		}
		if chk := s.check(t); chk["status"] != "active" || stepUpField(chk, "status") != "completed" {
			t.Fatalf("check-connection after the step-up: %v", chk)
		}
		// The step-up's state cannot be used twice.
		if resp := s.h.callback(url.Values{"state": {grant["state"].(string)}, "code": {"x"}}); resp.StatusCode != 400 {
			t.Fatalf("replayed step-up callback: %d", resp.StatusCode)
		}
		types := s.auditTypes(t)
		if !slices.Contains(types, "stepup.created") || !slices.Contains(types, "connection.scopes_changed") {
			t.Fatalf("audit %v lacks stepup.created or connection.scopes_changed", types)
		}
		if strings.Contains(s.h.logs.String(), s.tok) {
			t.Fatal("a token reached the logs")
		}
	})
}

// TestStepUpAbandonedKeepsConnection: a step-up the user denies, or never
// finishes, leaves the connection and its token as they were.
func TestStepUpAbandonedKeepsConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStepUpStack(t, dbURL)
		before := s.conn(t)

		// Denied at the provider.
		st, grant := s.stepUp(t, agentKey, "email")
		if st != 200 {
			t.Fatalf("step-up: %d %v", st, grant)
		}
		s.h.visitStart(grant["authUrl"].(string))
		resp := s.h.callback(url.Values{"state": {grant["state"].(string)}, "error": {"access_denied"}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.Contains(loc, "error=access_denied") || !strings.Contains(loc, "connection_id="+s.id) {
			t.Fatalf("denied step-up answered %d %q", resp.StatusCode, loc)
		}
		if c := s.conn(t); c.Status != storage.StatusActive || !slices.Equal(c.Scopes, before.Scopes) || c.Version != before.Version {
			t.Fatalf("denied step-up changed the connection: %+v", c)
		}
		if tok := s.token(t); tok != s.tok {
			t.Fatal("denied step-up changed the token served")
		}
		if chk := s.check(t); chk["status"] != "active" || stepUpField(chk, "status") != "failed" || stepUpField(chk, "reason") != "access_denied" {
			t.Fatalf("check-connection after a denied step-up: %v", chk)
		}

		// Opened at the provider, never finished: after the consent TTL
		// it reads as expired and the old token still serves.
		st, grant = s.stepUp(t, agentKey, "email")
		if st != 200 {
			t.Fatalf("second step-up: %d %v", st, grant)
		}
		b := testenv.NewBrowser(t)
		b.Get(grant["authUrl"].(string)) // the OP's login page; the user walks away
		s.h.clock.Advance(11 * time.Minute)
		if chk := s.check(t); chk["status"] != "active" || stepUpField(chk, "status") != "failed" || stepUpField(chk, "reason") != "expired" {
			t.Fatalf("check-connection after an abandoned step-up: %v", chk)
		}
		if c := s.conn(t); c.Status != storage.StatusActive || !slices.Equal(c.Scopes, before.Scopes) {
			t.Fatalf("abandoned step-up changed the connection: %+v", c)
		}
		var tok map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+s.id, "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 {
			t.Fatalf("token after an abandoned step-up: %d %v", st, tok)
		}
		types := s.auditTypes(t)
		if !slices.Contains(types, "stepup.failed") || slices.Contains(types, "connection.scopes_changed") {
			t.Fatalf("audit %v: want stepup.failed and no connection.scopes_changed", types)
		}
	})
}

// TestStepUpLimitedAndOwned: a fourth step-up within ten minutes is
// refused with 429 step_up_limited and starts nothing; another agent's
// step-up of the connection is a 404.
func TestStepUpLimitedAndOwned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStepUpStack(t, dbURL)
		if st, env := s.stepUp(t, "other-agent-key-0001", "email"); st != 404 {
			t.Fatalf("another agent's step-up: %d %v", st, env)
		}
		var last map[string]any
		for i := range 2 {
			st, out := s.stepUp(t, agentKey, "email")
			if st != 200 {
				t.Fatalf("step-up %d: %d %v", i+1, st, out)
			}
			last = out
		}
		// gRPC: the same field starts a step-up, and counts to the limit.
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+agentKey)
		req := &dromosv1.RequestConnectionRequest{UserId: "alice", ProviderName: "example", Scopes: []string{"email"},
			ReturnUrl: s.retURL, ConnectionId: s.id}
		g, err := s.grpc.RequestConnection(ctx, req)
		if err != nil || g.ConnectionId != s.id || !slices.Contains(g.Scopes, "email") {
			t.Fatalf("gRPC step-up: %v %v", g, err)
		}
		last = map[string]any{"authUrl": g.AuthUrl}
		chk, err := s.grpc.CheckConnection(ctx, &dromosv1.CheckConnectionRequest{ConnectionId: s.id})
		if err != nil || chk.GetStepUp().GetStatus() != "pending" || !slices.Contains(chk.GetStepUp().GetScopes(), "email") {
			t.Fatalf("gRPC check-connection: %v %v", chk, err)
		}
		if _, err := s.grpc.RequestConnection(ctx, req); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "step_up_limited") {
			t.Fatalf("fourth step-up over gRPC: %v, want ResourceExhausted step_up_limited", err)
		}
		latest, err := s.h.store.LatestStepUp(context.Background(), s.id)
		if err != nil {
			t.Fatal(err)
		}
		st, env := s.stepUp(t, agentKey, "email")
		if st != 429 || env["code"] != "step_up_limited" || !strings.HasPrefix(env["message"].(string), "at most 3 step-ups") {
			t.Fatalf("fourth step-up: %d %v, want 429 step_up_limited", st, env)
		}
		if now, _ := s.h.store.LatestStepUp(context.Background(), s.id); now.ID != latest.ID {
			t.Fatal("a refused step-up was stored")
		}
		// The last admitted attempt still works.
		if q := s.consentAtOP(t, last["authUrl"].(string)); q.Get("status") != "success" {
			t.Fatalf("last admitted step-up: %v", q)
		}
		// Once the attempts leave the window, one more is admitted (asked
		// of the broker directly: the gateway's clock does not move).
		s.h.clock.Advance(10*time.Minute + time.Second)
		var out map[string]any
		if st := s.h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "agent-a", "client_name": "agent-a",
			"user_id": "alice", "provider_name": "example", "scopes": []string{"profile"}, "return_url": s.retURL,
			"connection_id": s.id}, &out); st != 200 || out["connection_id"] != s.id {
			t.Fatalf("step-up after the window: %d %v", st, out)
		}
	})
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func stepUpField(check map[string]any, key string) string {
	su, _ := check["step_up"].(map[string]any)
	v, _ := su[key].(string)
	return v
}

// TestStepUpRefusesAnotherAccountAndOldLinks: a step-up consented by
// another account, an earlier attempt's link, and a callback from another
// browser are all refused, and the connection keeps its scopes and token.
func TestStepUpRefusesAnotherAccountAndOldLinks(t *testing.T) {
	s := newStepUpStack(t, sqliteURL(t))
	before := s.conn(t)
	unchanged := func(what string) {
		t.Helper()
		c := s.conn(t)
		if c.Status != storage.StatusActive || !slices.Equal(c.Scopes, before.Scopes) || c.Subject != before.Subject {
			t.Fatalf("%s changed the connection: %+v", what, c)
		}
		if tok := s.token(t); tok != s.tok {
			t.Fatalf("%s changed the token served", what)
		}
	}

	// Another account consents to the step-up.
	st, grant := s.stepUp(t, agentKey, "email")
	if st != 200 {
		t.Fatalf("step-up: %d %v", st, grant)
	}
	b := testenv.NewBrowser(t)
	page, body, _ := b.Get(grant["authUrl"].(string))
	s.op.LoginAs(b, page, body, testenv.SecondUser)
	select {
	case q := <-s.landing:
		if q.Get("status") != "error" || q.Get("error") != "identity_mismatch" {
			t.Fatalf("another account's step-up landed with %v", q)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("browser never reached the return page")
	}
	unchanged("another account's step-up")
	if chk := s.check(t); stepUpField(chk, "status") != "failed" || stepUpField(chk, "reason") != "identity_mismatch" {
		t.Fatalf("check-connection: %v", chk)
	}

	// An earlier attempt's link stops working once a new one starts.
	_, first := s.stepUp(t, agentKey, "profile")
	_, second := s.stepUp(t, agentKey, "profile")
	if resp := s.h.visitStart(first["authUrl"].(string)); resp.StatusCode != 400 {
		t.Fatalf("earlier attempt's authUrl: %d, want 400", resp.StatusCode)
	}
	// The newest attempt, opened in the user's browser, cannot be finished
	// from another one.
	s.h.visitStart(second["authUrl"].(string))
	other := testenv.NewBrowser(t)
	if _, _, code := other.Get(s.h.srv.URL + "/auth/callback?" + url.Values{"state": {second["state"].(string)}, "code": {"stolen"}}.Encode()); code != 400 {
		t.Fatalf("callback from another browser: %d, want 400", code)
	}
	unchanged("a refused step-up callback")
	if chk := s.check(t); stepUpField(chk, "status") != "pending" {
		t.Fatalf("the newest attempt should still be pending: %v", chk)
	}
}
