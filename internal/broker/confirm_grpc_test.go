package broker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/expectid"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// confirmFront is one of the gateway's two fronts, driven the same way so
// their outcomes can be compared.
type confirmFront interface {
	// request starts a connection for user that requires confirmation.
	request(t *testing.T, user, confirmURL string) (id, authURL string)
	// confirm presents value for user as the agent with key; code is the
	// contract error code, "" on success.
	confirm(t *testing.T, key, value, user string) (code, status, detail, continueURL string)
	// check is check-connection: status, detail, reason.
	check(t *testing.T, id string) (string, string, string)
	// token reads a token; code is the contract error code, "" on success.
	token(t *testing.T, id string) (code, accessToken string)
}

type restFront struct{ s *stack }

func (f restFront) request(t *testing.T, user, confirmURL string) (string, string) {
	t.Helper()
	var grant map[string]any
	if st := f.s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": user, "provider_name": "example", "scopes": []string{"openid", "offline_access"},
		"return_url": f.s.retURL, "confirm_url": confirmURL, "require_confirmation": true}, &grant); st != 200 {
		t.Fatalf("request-connection %d %v", st, grant)
	}
	return grant["connection_id"].(string), grant["authUrl"].(string)
}

func (f restFront) confirm(t *testing.T, key, value, user string) (string, string, string, string) {
	t.Helper()
	var out map[string]any
	if st := f.s.rest(t, "POST", "/v1/confirm-connection", "/v1/confirm-connection", key,
		map[string]any{"confirmation": value, "user_id": user}, &out); st != 200 {
		code, _ := out["code"].(string)
		return code, "", "", ""
	}
	detail, _ := out["detail"].(string)
	return "", out["status"].(string), detail, out["continue_url"].(string)
}

func (f restFront) check(t *testing.T, id string) (string, string, string) {
	t.Helper()
	var out map[string]any
	if st := f.s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &out); st != 200 {
		t.Fatalf("check-connection %d %v", st, out)
	}
	detail, _ := out["detail"].(string)
	reason, _ := out["reason"].(string)
	return out["status"].(string), detail, reason
}

func (f restFront) token(t *testing.T, id string) (string, string) {
	t.Helper()
	var out map[string]any
	if st := f.s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", agentKey, nil, &out); st != 200 {
		return out["code"].(string), ""
	}
	return "", out["access_token"].(string)
}

type grpcFront struct{ s *stack }

func grpcAs(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

// grpcCode is the contract code of a gRPC error, checked against the
// status code the gateway maps it to.
func grpcErrCode(t *testing.T, err error) string {
	t.Helper()
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			want := map[string]codes.Code{"invalid_confirmation": codes.InvalidArgument, "user_mismatch": codes.FailedPrecondition,
				"confirmation_reused": codes.FailedPrecondition, "confirmation_over": codes.FailedPrecondition,
				"not_ready": codes.FailedPrecondition, "bad_request": codes.InvalidArgument}[info.Reason]
			if want != codes.OK && st.Code() != want {
				t.Errorf("%s mapped to %s, want %s", info.Reason, st.Code(), want)
			}
			if !strings.HasPrefix(st.Message(), info.Reason+": ") {
				t.Errorf("status message %q does not start with its code", st.Message())
			}
			return info.Reason
		}
	}
	t.Fatalf("gRPC error without ErrorInfo: %v", err)
	return ""
}

func (f grpcFront) request(t *testing.T, user, confirmURL string) (string, string) {
	t.Helper()
	grant, err := f.s.grpc.RequestConnection(grpcAs(agentKey), &dromosv1.RequestConnectionRequest{
		UserId: user, ProviderName: "example", Scopes: []string{"openid", "offline_access"},
		ReturnUrl: f.s.retURL, ConfirmUrl: confirmURL, RequireConfirmation: true})
	if err != nil {
		t.Fatalf("RequestConnection: %v", err)
	}
	return grant.GetConnectionId(), grant.GetAuthUrl()
}

func (f grpcFront) confirm(t *testing.T, key, value, user string) (string, string, string, string) {
	t.Helper()
	out, err := f.s.grpc.ConfirmConnection(grpcAs(key), &dromosv1.ConfirmConnectionRequest{Confirmation: value, UserId: user})
	if err != nil {
		return grpcErrCode(t, err), "", "", ""
	}
	return "", out.GetStatus(), out.GetDetail(), out.GetContinueUrl()
}

func (f grpcFront) check(t *testing.T, id string) (string, string, string) {
	t.Helper()
	out, err := f.s.grpc.CheckConnection(grpcAs(agentKey), &dromosv1.CheckConnectionRequest{ConnectionId: id})
	if err != nil {
		t.Fatalf("CheckConnection: %v", err)
	}
	st := strings.ToLower(strings.TrimPrefix(out.GetStatus().String(), "CONNECTION_STATUS_"))
	return st, out.GetDetail(), out.GetReason()
}

func (f grpcFront) token(t *testing.T, id string) (string, string) {
	t.Helper()
	tok, err := f.s.grpc.GetToken(grpcAs(agentKey), &dromosv1.GetTokenRequest{ConnectionId: id})
	if err != nil {
		return grpcErrCode(t, err), ""
	}
	return "", tok.GetAccessToken()
}

// confirmScenario plays user confirmation through one front: the attack
// (confirmed as another user), a guessed value, another agent, the honest
// path and a replay after it. It returns what each step answered, for
// comparing the fronts.
func confirmScenario(t *testing.T, s *stack, f confirmFront) []string {
	t.Helper()
	var seen []string
	note := func(parts ...string) { seen = append(seen, strings.Join(parts, " ")) }
	confirmURL := strings.TrimSuffix(s.retURL, "/back") + "/confirm"
	consent := func(user string) (string, *testenv.Browser, string) {
		t.Helper()
		id, authURL := f.request(t, user, confirmURL)
		b := testenv.NewBrowser(t)
		page, body, _ := b.Get(authURL)
		s.op.LoginAtOP(b, page, body)
		q := s.landingQuery(t)
		if q.Get("connection_id") != id || q.Get("confirmation") == "" || q.Has("status") {
			t.Fatalf("confirm_url got %v", q)
		}
		st, detail, reason := f.check(t, id)
		note("awaiting:", st, detail, reason)
		code, _ := f.token(t, id)
		note("token while awaiting:", code)
		return id, b, q.Get("confirmation")
	}

	// The attack: mallory's connection, consented in alice's browser,
	// confirmed by the application for alice.
	id, _, value := consent("mallory")
	code, _, _, _ := f.confirm(t, agentKey, id+"."+strings.Repeat("A", 43), "mallory")
	note("guessed value:", code)
	code, _, _, _ = f.confirm(t, "other-agent-key-0001", value, "mallory")
	note("other agent:", code)
	code, _, _, _ = f.confirm(t, agentKey, value, "alice")
	note("as alice:", code)
	st, detail, reason := f.check(t, id)
	note("after mismatch:", st, detail, reason)
	s.h.assertNoToken(id)
	code, _, _, _ = f.confirm(t, agentKey, value, "mallory")
	note("after mismatch, as mallory:", code)

	// The honest path.
	id, b, value := consent("mallory")
	code, st, detail, cont := f.confirm(t, agentKey, value, "mallory")
	note("as mallory:", code, st, detail)
	if cont == "" {
		t.Fatal("no continue_url")
	}
	b.Get(cont)
	q := s.landingQuery(t)
	note("return_url:", q.Get("status"), strconv.FormatBool(q.Get("connection_id") == id))
	st, detail, reason = f.check(t, id)
	note("confirmed:", st, detail, reason)
	code, tok := f.token(t, id)
	note("token:", code, strconv.FormatBool(tok != ""))
	code, _, _, _ = f.confirm(t, agentKey, value, "mallory")
	note("replay:", code)

	for _, secret := range []string{value, cont, tok} {
		if secret != "" && (strings.Contains(s.gwLogs.String(), secret) || strings.Contains(s.h.logs.String(), secret)) {
			t.Fatal("a confirmation value or token reached the logs")
		}
	}
	return seen
}

// User confirmation over gRPC against an independent OP, played step by
// step as over REST: both fronts answer the same.
func TestGatewayConfirmConnectionGRPC(t *testing.T) {
	want := []string{
		"awaiting: pending awaiting_confirmation awaiting_user",
		"token while awaiting: not_ready",
		"guessed value: invalid_confirmation",
		"other agent: invalid_confirmation",
		"as alice: user_mismatch",
		"after mismatch: failed  user_mismatch",
		"after mismatch, as mallory: confirmation_over",
		"awaiting: pending awaiting_confirmation awaiting_user",
		"token while awaiting: not_ready",
		"as mallory:  pending awaiting_confirmation",
		"return_url: success true",
		"confirmed: active  ",
		"token:  true",
		"replay: confirmation_over",
	}
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		got := map[string][]string{
			"grpc": confirmScenario(t, s, grpcFront{s}),
			"rest": confirmScenario(t, s, restFront{s}),
		}
		for front, seen := range got {
			if strings.Join(seen, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s answered:\n%s\nwant:\n%s", front, strings.Join(seen, "\n"), strings.Join(want, "\n"))
			}
		}
	})
}

// RequireConfirmation without ConfirmUrl is refused over gRPC as over
// REST, before any connection exists.
func TestGRPCRequireConfirmationNeedsConfirmURL(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	_, err := s.grpc.RequestConnection(grpcAs(agentKey), &dromosv1.RequestConnectionRequest{
		UserId: "mallory", ProviderName: "example", Scopes: []string{"openid"}, ReturnUrl: s.retURL, RequireConfirmation: true})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "confirm_url") {
		t.Fatalf("RequireConfirmation without ConfirmUrl: %v", err)
	}
	if ids, err := s.h.store.ListConnectionIDs(t.Context(), "", 10); err != nil || len(ids) != 0 {
		t.Fatalf("connections stored: %v (%v)", ids, err)
	}
}

// ExpectedIdentity reaches the broker whole over gRPC: it is stored as
// given and enforced (the OP's user is not "nobody": identity_mismatch);
// a malformed one is InvalidArgument.
func TestGRPCExpectedIdentity(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	want := expectid.Identity{Email: "someone@example.com", EmailDomain: "example.com", Sub: "nobody"}
	grant, err := s.grpc.RequestConnection(grpcAs(agentKey), &dromosv1.RequestConnectionRequest{
		UserId: "alice", ProviderName: "example", Scopes: []string{"openid"}, ReturnUrl: s.retURL,
		ExpectedIdentity: &dromosv1.ExpectedIdentity{Email: want.Email, EmailDomain: want.EmailDomain, Sub: want.Sub}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.h.store.GetConnection(t.Context(), grant.GetConnectionId())
	if err != nil {
		t.Fatal(err)
	}
	var stored expectid.Identity
	if err := json.Unmarshal([]byte(c.ExpectedIdentity), &stored); err != nil || stored != want {
		t.Fatalf("stored expected identity %q (%v), want %+v", c.ExpectedIdentity, err, want)
	}
	if q := s.consentAtOP(t, grant.GetAuthUrl()); q.Get("status") != "error" || q.Get("error") != "identity_mismatch" {
		t.Fatalf("landing %v", q)
	}
	st, err := s.grpc.CheckConnection(grpcAs(agentKey), &dromosv1.CheckConnectionRequest{ConnectionId: grant.GetConnectionId()})
	if err != nil || st.GetStatus() != dromosv1.ConnectionStatus_CONNECTION_STATUS_FAILED || st.GetReason() != "identity_mismatch" {
		t.Fatalf("check %v %v", st, err)
	}
	s.h.assertNoToken(grant.GetConnectionId())

	for name, bad := range map[string]*dromosv1.ExpectedIdentity{
		"empty":    {},
		"no email": {Email: "not-an-address"},
	} {
		_, err := s.grpc.RequestConnection(grpcAs(agentKey), &dromosv1.RequestConnectionRequest{
			UserId: "alice", ProviderName: "example", Scopes: []string{"openid"}, ReturnUrl: s.retURL, ExpectedIdentity: bad})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s expected identity: %v", name, err)
		}
	}
}
