package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/dromos-dev/dromos/api"
	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/testenv"
)

const agentKey = "agent-a-secret-key"

// stack is the whole system: the independent OP, the broker and a gateway
// talking to it over HTTP, with REST and gRPC fronts.
type stack struct {
	h       *harness
	op      *testenv.OP
	gwURL   string
	grpc    dromosv1.GatewayClient
	spec    *openapi3.T
	gwLogs  *syncBuffer
	landing chan url.Values
	retURL  string
}

func newStack(t *testing.T, dbURL string) *stack { return newStackWith(t, dbURL) }

func newStackWith(t *testing.T, dbURL string, tweak ...func(*broker.Config)) *stack {
	return newStackGateway(t, dbURL, nil, tweak...)
}

// newStackGateway is newStackWith with the gateway's configuration edited
// by gwTweak (nil leaves it alone) before the gateway starts.
func newStackGateway(t *testing.T, dbURL string, gwTweak func(*gateway.Config), tweak ...func(*broker.Config)) *stack {
	s := &stack{h: newHarness(t, dbURL, tweak...), gwLogs: &syncBuffer{}}
	s.op = testenv.StartOP(t, s.h.srv.URL+"/auth/callback")
	ret, landing := returnPage(t)
	s.landing, s.retURL = landing, ret.URL+"/back"
	s.h.registerProvider(map[string]any{"name": "example", "issuer": s.op.Issuer, "enable_discovery": true,
		"client_id": s.op.ClientID, "client_secret": s.op.ClientSecret})

	// agent-a gets id_tokens (the id-token option); agent-b does not.
	clients, err := gateway.ParseClientKeys("agent-a:" + agentKey + ";id-token,agent-b:other-agent-key-0001")
	if err != nil {
		t.Fatal(err)
	}
	gwCfg := gateway.Config{BrokerBaseURL: s.h.srv.URL, StateKeys: []state.Key{stateKey}, Clients: clients}
	if gwTweak != nil {
		gwTweak(&gwCfg)
	}
	gw, err := gateway.New(gwCfg,
		gateway.Deps{Logger: logging.New(s.gwLogs, slog.LevelDebug), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.HTTPHandler())
	t.Cleanup(srv.Close)
	s.gwURL = srv.URL
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := gw.GRPCServer()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.grpc = dromosv1.NewGatewayClient(conn)
	s.spec, err = openapi3.NewLoader().LoadFromData([]byte(api.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rest calls the gateway as agent-a (or with key) and validates the answer
// against api/openapi.yaml.
func (s *stack) rest(t *testing.T, method, path, template, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.gwURL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	item := s.spec.Paths.Value(template)
	op := item.GetOperation(method)
	route := &routers.Route{Spec: s.spec, Path: template, PathItem: item, Method: method, Operation: op}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route},
		Status:                 resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(raw)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}); err != nil {
		t.Fatalf("%s %s answered %d outside api/openapi.yaml: %v\n%s", method, template, resp.StatusCode, err, raw)
	}
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode
}

// consentAtOP logs in at the OP with a fresh browser and returns the query
// the agent's return page received.
func (s *stack) consentAtOP(t *testing.T, authURL string) url.Values {
	t.Helper()
	b := testenv.NewBrowser(t)
	page, body, _ := b.Get(authURL)
	s.op.LoginAtOP(b, page, body)
	select {
	case q := <-s.landing:
		return q
	case <-time.After(10 * time.Second):
		t.Fatal("browser never reached the return page")
		return nil
	}
}

func TestGatewayEndToEndREST(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		var grant map[string]any
		st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "Example", "scopes": []string{"openid", "email", "offline_access"},
			"return_url": s.retURL}, &grant)
		if st != 200 {
			t.Fatalf("request-connection %d %v", st, grant)
		}
		id := grant["connection_id"].(string)
		var status map[string]any
		s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &status)
		if status["status"] != "pending" {
			t.Fatalf("before consent: %v", status)
		}
		if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" || q.Get("connection_id") != id {
			t.Fatalf("landing %v", q)
		}
		s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &status)
		if status["status"] != "active" {
			t.Fatalf("after consent: %v", status)
		}
		var tok map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 || tok["access_token"] == "" || tok["id_token"] == nil {
			t.Fatalf("token %d %v", st, tok)
		}
		// Another agent cannot see it; no key at all is a 401.
		var env map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", "other-agent-key-0001", nil, &env); st != 404 {
			t.Fatalf("other client: %d %v", st, env)
		}
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", "", nil, &env); st != 401 {
			t.Fatalf("no key: %d", st)
		}
		// The agent saw a 401 at the provider: a forced refresh gives a new token.
		var fresh map[string]any
		if st := s.rest(t, "POST", "/v1/refresh/"+id, "/v1/refresh/{connection_id}", agentKey, nil, &fresh); st != 200 ||
			fresh["access_token"] == tok["access_token"] {
			t.Fatalf("refresh %d %v", st, fresh)
		}
		// After expiry, a plain token read through the gateway gets a token
		// the broker refreshed at the OP on the way.
		s.h.clock.Advance(2 * time.Hour)
		var later map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", agentKey, nil, &later); st != 200 ||
			later["access_token"] == fresh["access_token"] || later["access_token"] == tok["access_token"] {
			t.Fatalf("token after expiry: %d %v", st, later)
		}
		// Another agent cannot delete it; its owner can, and then it is gone.
		if st := s.rest(t, "DELETE", "/v1/connections/"+id, "/v1/connections/{connection_id}", "other-agent-key-0001", nil, &env); st != 404 {
			t.Fatalf("other client delete: %d", st)
		}
		if st := s.rest(t, "DELETE", "/v1/connections/"+id, "/v1/connections/{connection_id}", agentKey, nil, nil); st != 204 {
			t.Fatalf("delete: %d", st)
		}
		if st := s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &env); st != 404 {
			t.Fatalf("after delete: %d", st)
		}
		for _, secret := range []string{tok["access_token"].(string), fresh["access_token"].(string), agentKey} {
			if strings.Contains(s.gwLogs.String(), secret) || strings.Contains(s.h.logs.String(), secret) {
				t.Fatal("a token or API key reached the logs")
			}
		}
	})
}

func TestGatewayEndToEndGRPC(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+agentKey)
	grant, err := s.grpc.RequestConnection(ctx, &dromosv1.RequestConnectionRequest{
		UserId: "bob", ProviderName: "example", Scopes: []string{"openid", "offline_access"}, ReturnUrl: s.retURL})
	if err != nil {
		t.Fatal(err)
	}
	if q := s.consentAtOP(t, grant.AuthUrl); q.Get("status") != "success" {
		t.Fatalf("landing %v", q)
	}
	st, err := s.grpc.CheckConnection(ctx, &dromosv1.CheckConnectionRequest{ConnectionId: grant.ConnectionId})
	if err != nil || !strings.Contains(strings.ToLower(st.GetStatus().String()), "active") {
		t.Fatalf("check %v %v", st, err)
	}
	tok, err := s.grpc.GetToken(ctx, &dromosv1.GetTokenRequest{ConnectionId: grant.ConnectionId})
	if err != nil || tok.AccessToken == "" || tok.GetIdToken() == "" {
		t.Fatalf("token %v", err)
	}
	if _, err := s.grpc.GetToken(context.Background(), &dromosv1.GetTokenRequest{ConnectionId: grant.ConnectionId}); err == nil {
		t.Fatal("gRPC without a key succeeded")
	}
}
