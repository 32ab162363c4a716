package faults_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
)

// otherAgent is a second agent both deployments know.
const (
	otherAgent    = "agent-b"
	otherAgentKey = "other-agent-key-0001"
)

// serveDeployment is `dromos serve`: the broker on ports[0], the
// gateway's REST API on ports[1] and its gRPC API on ports[2].
type serveDeployment struct {
	proc     *proc
	gwURL    string
	grpcAddr string
}

func startServe(t *testing.T, dbURL string, s secrets) serveDeployment {
	t.Helper()
	p := launch(t, "serve", "serve", 3, "/ready", func(ports []int) []string {
		return append(brokerEnv(dbURL, s)(ports),
			"GATEWAY_PORT="+strconv.Itoa(ports[1]),
			"GATEWAY_PORT_GRPC="+strconv.Itoa(ports[2]),
			"GATEWAY_API_KEYS="+agentName+":"+s.agentKey+","+otherAgent+":"+otherAgentKey)
	})
	return serveDeployment{proc: p, gwURL: "http://127.0.0.1:" + strconv.Itoa(p.ports[1]),
		grpcAddr: "127.0.0.1:" + strconv.Itoa(p.ports[2])}
}

// startSplitGateway runs `dromos gateway` in front of broker with the same
// two agents as startServe.
func startSplitGateway(t *testing.T, broker *proc, s secrets) *proc {
	t.Helper()
	return launch(t, "gateway", "gateway", 2, "/health", func(ports []int) []string {
		env := gatewayEnv(broker, s)(ports)
		for i, kv := range env {
			if strings.HasPrefix(kv, "GATEWAY_API_KEYS=") {
				env[i] = kv + "," + otherAgent + ":" + otherAgentKey
			}
		}
		return env
	})
}

// consentThroughBroker plays the person: open authUrl (the broker's start
// page), follow it to the provider and come back to the broker's callback
// with a code, landing on the agent's return URL.
func consentThroughBroker(t *testing.T, authURL string, broker *proc) {
	t.Helper()
	br := browser(t)
	a := must(t, br, "GET", authURL, "", nil)
	loc, err := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusFound || err != nil || !strings.Contains(loc.Path, "/authorize") {
		t.Fatalf("auth start: %d, Location %q", a.status, redactQuery(a.header.Get("Location")))
	}
	st := loc.Query().Get("state")
	a = must(t, br, "GET", broker.url+"/auth/callback?"+url.Values{"state": {st}, "code": {"code-serve"}}.Encode(), "", nil)
	back, err := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusFound || err != nil || back.Query().Get("status") != "success" {
		t.Fatalf("callback: %d, Location %q", a.status, redactQuery(a.header.Get("Location")))
	}
}

// TestServeGatewayEndToEnd runs the gateway's end-to-end flow (the one
// internal/broker runs in process for the split design) against a real
// `dromos serve` on PostgreSQL, over REST and gRPC: request a connection,
// see it pending, consent, see it active, read, refresh, list, refuse
// another agent and a missing key, delete.
func TestServeGatewayEndToEnd(t *testing.T) {
	dbURL := postgresURL(t)
	s := newSecrets(t)
	prov := newFakeProvider(t, providerBehaviour{codeTTL: 3600, refreshTTL: 3600})
	srv := startServe(t, dbURL, s)
	register(t, srv.proc, prov, "fake")
	hc := newClient(20 * time.Second)
	gw := srv.gwURL

	t.Run("REST", func(t *testing.T) {
		a := must(t, hc, "POST", gw+"/v1/request-connection", s.agentKey, map[string]any{
			"user_id": "alice", "provider_name": "fake", "scopes": []string{"read"}, "return_url": returnURL})
		id, authURL := a.str("connection_id"), a.str("authUrl")
		if a.status != http.StatusOK || id == "" || !strings.HasPrefix(authURL, srv.proc.url+"/auth/start/") {
			t.Fatalf("request-connection: %d %s", a.status, a.body)
		}
		if a := must(t, hc, "GET", gw+"/v1/check-connection/"+id, s.agentKey, nil); a.str("status") != "pending" {
			t.Fatalf("before consent: %d %s", a.status, a.body)
		}
		consentThroughBroker(t, authURL, srv.proc)
		if a := must(t, hc, "GET", gw+"/v1/check-connection/"+id, s.agentKey, nil); a.str("status") != "active" {
			t.Fatalf("after consent: %d %s", a.status, a.body)
		}
		tok := must(t, hc, "GET", gw+"/v1/token/"+id, s.agentKey, nil)
		first := tok.str("access_token")
		if tok.status != http.StatusOK || first != prov.lastAccessToken() || tok.str("token_type") != "Bearer" {
			t.Fatalf("token: %d", tok.status)
		}
		if exp := tok.json(t)["expires_in"].(float64); exp < 3500 || exp > 3600 {
			t.Errorf("expires_in %v", exp)
		}
		if a := must(t, hc, "GET", gw+"/v1/token/"+id, otherAgentKey, nil); a.status != http.StatusNotFound || a.str("code") != "not_found" {
			t.Fatalf("another agent's read: %d %s", a.status, a.body)
		}
		if a := must(t, hc, "GET", gw+"/v1/token/"+id, "", nil); a.status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", a.status)
		}
		fresh := must(t, hc, "POST", gw+"/v1/refresh/"+id, s.agentKey, nil)
		if fresh.status != http.StatusOK || fresh.str("access_token") == first || fresh.str("access_token") != prov.lastAccessToken() {
			t.Fatalf("refresh: %d", fresh.status)
		}
		if a := must(t, hc, "GET", gw+"/v1/token/"+id, s.agentKey, nil); a.str("access_token") != fresh.str("access_token") {
			t.Fatal("the read after a refresh did not return the refreshed token")
		}
		list := must(t, hc, "GET", gw+"/v1/connections?status=active", s.agentKey, nil)
		if list.status != http.StatusOK || !strings.Contains(string(list.body), id) {
			t.Fatalf("listing: %d %s", list.status, list.body)
		}
		if a := must(t, hc, "GET", gw+"/v1/connections?status=active", otherAgentKey, nil); strings.Contains(string(a.body), id) {
			t.Fatal("another agent's listing shows the connection")
		}
		if a := must(t, hc, "DELETE", gw+"/v1/connections/"+id, otherAgentKey, nil); a.status != http.StatusNotFound {
			t.Fatalf("another agent's delete: %d", a.status)
		}
		if a := must(t, hc, "DELETE", gw+"/v1/connections/"+id, s.agentKey, nil); a.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", a.status, a.body)
		}
		if a := must(t, hc, "GET", gw+"/v1/check-connection/"+id, s.agentKey, nil); a.status != http.StatusNotFound {
			t.Fatalf("after delete: %d", a.status)
		}
	})

	t.Run("gRPC", func(t *testing.T) {
		cc, err := grpc.NewClient(srv.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		client := dromosv1.NewGatewayClient(cc)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		keyed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.agentKey)
		grant, err := client.RequestConnection(keyed, &dromosv1.RequestConnectionRequest{
			UserId: "bob", ProviderName: "fake", Scopes: []string{"read"}, ReturnUrl: returnURL})
		if err != nil {
			t.Fatal(err)
		}
		consentThroughBroker(t, grant.AuthUrl, srv.proc)
		st, err := client.CheckConnection(keyed, &dromosv1.CheckConnectionRequest{ConnectionId: grant.ConnectionId})
		if err != nil || !strings.Contains(strings.ToLower(st.GetStatus().String()), "active") {
			t.Fatalf("check %v %v", st, err)
		}
		tok, err := client.GetToken(keyed, &dromosv1.GetTokenRequest{ConnectionId: grant.ConnectionId})
		if err != nil || tok.AccessToken != prov.lastAccessToken() {
			t.Fatalf("token: %v", err)
		}
		fresh, err := client.RefreshToken(keyed, &dromosv1.RefreshTokenRequest{ConnectionId: grant.ConnectionId})
		if err != nil || fresh.AccessToken == tok.AccessToken {
			t.Fatalf("refresh: %v", err)
		}
		if _, err := client.GetToken(ctx, &dromosv1.GetTokenRequest{ConnectionId: grant.ConnectionId}); grpcstatus.Code(err).String() != "Unauthenticated" {
			t.Fatalf("gRPC without a key: %v", err)
		}
		other := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+otherAgentKey)
		if _, err := client.GetToken(other, &dromosv1.GetTokenRequest{ConnectionId: grant.ConnectionId}); grpcstatus.Code(err).String() != "NotFound" {
			t.Fatalf("another agent's read: %v", err)
		}
		if _, err := client.DeleteConnection(keyed, &dromosv1.DeleteConnectionRequest{ConnectionId: grant.ConnectionId}); err != nil {
			t.Fatalf("delete: %v", err)
		}
	})
	assertNoLeak(t, append(prov.secrets(), s.agentKey, otherAgentKey), srv.proc)
}

// TestServeErrorsMatchSplit: every error an agent can meet on the token
// and connection calls reads the same through `dromos serve` (the gateway
// calling the broker in process) as through `dromos gateway` in front of
// `dromos broker` (brokerclient over HTTP): status, Retry-After and the
// envelope byte for byte over REST, code and message over gRPC. Both
// deployments share one database, so they answer for the same connections.
func TestServeErrorsMatchSplit(t *testing.T) {
	dbURL := postgresURL(t)
	s := newSecrets(t)
	prov := newFakeProvider(t, providerBehaviour{codeTTL: 3600, refreshTTL: 3600})
	srv := startServe(t, dbURL, s)
	broker := startBroker(t, "broker", dbURL, s)
	split := startSplitGateway(t, broker, s)
	register(t, srv.proc, prov, "fake")
	hc := newClient(20 * time.Second)

	request := func(user string) (string, string) {
		a := must(t, hc, "POST", srv.gwURL+"/v1/request-connection", s.agentKey, map[string]any{
			"user_id": user, "provider_name": "fake", "scopes": []string{"read"}, "return_url": returnURL})
		if a.status != http.StatusOK {
			t.Fatalf("request-connection: %d %s", a.status, a.body)
		}
		return a.str("connection_id"), a.str("authUrl")
	}
	active, authURL := request("alice")
	consentThroughBroker(t, authURL, srv.proc)
	// A second active connection, so that each deployment meets the
	// provider's failure on a connection of its own: a connection whose
	// refresh just failed answers the next reader differently.
	active2, authURL2 := request("bob")
	consentThroughBroker(t, authURL2, srv.proc)
	pending, _ := request("carol")
	const unknown = "00000000-0000-4000-8000-000000000000"

	type call struct {
		name, method, path, key string
		body                    any
		want                    int
	}
	calls := []call{
		{"unknown connection token", "GET", "/v1/token/" + unknown, s.agentKey, nil, 404},
		{"pending connection token", "GET", "/v1/token/" + pending, s.agentKey, nil, 409},
		{"pending connection refresh", "POST", "/v1/refresh/" + pending, s.agentKey, nil, 409},
		{"another agent's token", "GET", "/v1/token/" + active, otherAgentKey, nil, 404},
		{"another agent's refresh", "POST", "/v1/refresh/" + active, otherAgentKey, nil, 404},
		{"malformed id", "GET", "/v1/token/NOT-A-UUID", s.agentKey, nil, 400},
		{"unknown connection check", "GET", "/v1/check-connection/" + unknown, s.agentKey, nil, 404},
		{"unknown connection record", "GET", "/v1/connections/" + unknown, s.agentKey, nil, 404},
		{"unknown connection delete", "DELETE", "/v1/connections/" + unknown, s.agentKey, nil, 404},
		{"unknown provider", "POST", "/v1/request-connection", s.agentKey, map[string]any{
			"user_id": "dave", "provider_name": "nope", "scopes": []string{"read"}, "return_url": returnURL}, 404},
		{"reconnect of another agent's connection", "POST", "/v1/request-connection", otherAgentKey, map[string]any{
			"user_id": "alice", "provider_name": "fake", "scopes": []string{"read"}, "return_url": returnURL, "connection_id": active}, 404},
		{"bad listing status", "GET", "/v1/connections?status=sleeping", s.agentKey, nil, 400},
	}
	compareOn := func(t *testing.T, c call, splitPath string) {
		t.Helper()
		viaServe := must(t, hc, c.method, srv.gwURL+c.path, c.key, c.body)
		viaSplit := must(t, hc, c.method, split.url+splitPath, c.key, c.body)
		if viaServe.status != c.want || viaSplit.status != c.want {
			t.Errorf("%s: serve %d, split %d, want %d\nserve: %s\nsplit: %s", c.name, viaServe.status, viaSplit.status, c.want, viaServe.body, viaSplit.body)
		}
		if string(viaServe.body) != string(viaSplit.body) || viaServe.header.Get("Retry-After") != viaSplit.header.Get("Retry-After") {
			t.Errorf("%s: the deployments disagree\nserve: %s (Retry-After %q)\nsplit: %s (Retry-After %q)", c.name,
				viaServe.body, viaServe.header.Get("Retry-After"), viaSplit.body, viaSplit.header.Get("Retry-After"))
		}
	}
	for _, c := range calls {
		compareOn(t, c, c.path)
	}
	// The provider fails every refresh: the broker's answer (503 with the
	// provider's back-off) must reach the agent the same way from both.
	prov.set(func(b *providerBehaviour) { b.refresh = refreshFail500 })
	compareOn(t, call{"provider fails the refresh", "POST", "/v1/refresh/" + active, s.agentKey, nil, 503}, "/v1/refresh/"+active2)

	// Each deployment's calls name its own failing connection (active for
	// serve, active2 for split), which have both failed once by now.
	grpcErr := func(addr, failing string, f func(context.Context, dromosv1.GatewayClient, string) error) (string, string) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st := grpcstatus.Convert(f(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.agentKey), dromosv1.NewGatewayClient(cc), failing))
		return st.Code().String(), st.Message()
	}
	splitGRPC := "127.0.0.1:" + strconv.Itoa(split.ports[1])
	for name, f := range map[string]func(context.Context, dromosv1.GatewayClient, string) error{
		"token of an unknown connection": func(ctx context.Context, c dromosv1.GatewayClient, _ string) error {
			_, err := c.GetToken(ctx, &dromosv1.GetTokenRequest{ConnectionId: unknown})
			return err
		},
		"token of a pending connection": func(ctx context.Context, c dromosv1.GatewayClient, _ string) error {
			_, err := c.GetToken(ctx, &dromosv1.GetTokenRequest{ConnectionId: pending})
			return err
		},
		"failed refresh": func(ctx context.Context, c dromosv1.GatewayClient, failing string) error {
			_, err := c.RefreshToken(ctx, &dromosv1.RefreshTokenRequest{ConnectionId: failing})
			return err
		},
		"unknown provider": func(ctx context.Context, c dromosv1.GatewayClient, _ string) error {
			_, err := c.RequestConnection(ctx, &dromosv1.RequestConnectionRequest{UserId: "erin", ProviderName: "nope",
				Scopes: []string{"read"}, ReturnUrl: returnURL})
			return err
		},
	} {
		code, msg := grpcErr(srv.grpcAddr, active, f)
		splitCode, splitMsg := grpcErr(splitGRPC, active2, f)
		if code == "OK" || code != splitCode || msg != splitMsg {
			t.Errorf("gRPC %s: serve %s %q, split %s %q", name, code, msg, splitCode, splitMsg)
		}
	}
	assertNoLeak(t, append(prov.secrets(), s.agentKey, otherAgentKey), srv.proc, broker, split)
}
