package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/demoprovider"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
	"github.com/dromos-dev/dromos/internal/testenv"
	"github.com/dromos-dev/dromos/internal/tracing"
)

// TestTraceCoversGatewayBrokerAndProvider runs a broker (on PostgreSQL) and
// a gateway wired as `dromos broker` and `dromos gateway` wire them, with
// an in-process span exporter in place of OTLP, connects a demo provider
// account through them, and reads its token through the gateway once it
// is due for a refresh. That read must be one trace: the gateway's server
// span, its call to the broker (traceparent sent and continued), the
// broker's server span, the refresh, the token endpoint call, the HTTP
// call to the provider and the database queries. A read of the same token
// over the gateway's gRPC API, sent with the agent's own traceparent, must
// continue that trace through the broker to its query. No attribute of
// any span may hold a token, code, key or secret (the agent's key travels
// in the gRPC metadata), and the broker's log lines for the read carry the
// trace id.
func TestTraceCoversGatewayBrokerAndProvider(t *testing.T) {
	db := storagetest.PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	exp := tracetest.NewInMemoryExporter()
	tr, err := tracing.New(ctx, tracing.Config{}, tracing.Options{ServiceName: "dromos-test", Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())

	// The demo provider, with tokens short enough that the read below
	// comes due for a refresh after a short wait.
	const clientSecret = "demo-client-secret-0123456789"
	providerLn, _ := net.Listen("tcp", "127.0.0.1:0")
	issuer := "http://" + providerLn.Addr().String()

	brokerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	brokerURL := "http://" + brokerLn.Addr().String()
	keys := map[string]string{
		"ENCRYPTION_KEY": mustKey(t), "STATE_KEY": mustKey(t),
		"API_KEY": "broker-api-key-0123456789abcdef", "AGENT_KEY": "agent-key-0123456789abcdef",
	}
	cfg, err := config.LoadBroker(config.Env{
		"BASE_URL": brokerURL, "DATABASE_URL": db,
		"ENCRYPTION_KEY": keys["ENCRYPTION_KEY"], "STATE_KEY": keys["STATE_KEY"], "API_KEY": keys["API_KEY"],
		"EXPOSE_REFRESH_TOKEN": "true", "RATE_LIMIT_CALLBACK": "0", "LOG_LEVEL": "debug",
	})
	if err != nil {
		t.Fatal(err)
	}
	brokerLog := &lockedBuffer{}
	log := logging.New(brokerLog, slog.LevelDebug)
	svc, store, err := buildBrokerTraced(ctx, cfg, log, newRegistry(), nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defer svc.Close()
	brokerSrv := &http.Server{Handler: tr.Handler("broker", svc.Handler())}
	go brokerSrv.Serve(brokerLn)
	defer brokerSrv.Close()

	demo, err := demoprovider.New(demoprovider.Options{
		Issuer: issuer, ClientID: demoClientID, ClientSecret: clientSecret,
		RedirectURIs: []string{cfg.RedirectURI()}, AccessTokenTTL: 3 * time.Second, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	providerSrv := &http.Server{Handler: demo.Handler()}
	go providerSrv.Serve(providerLn)
	defer providerSrv.Close()
	if err := registerDemo(ctx, svc, issuer, clientSecret); err != nil {
		t.Fatal(err)
	}

	gcfg, err := config.LoadGateway(config.Env{
		"BROKER_BASE_URL": brokerURL, "BROKER_API_KEY": keys["API_KEY"], "STATE_KEY": keys["STATE_KEY"],
		"GATEWAY_API_KEYS": "agent:" + keys["AGENT_KEY"],
	})
	if err != nil {
		t.Fatal(err)
	}
	gatewayLog := &lockedBuffer{}
	gw, err := gateway.New(gateway.Config{
		BrokerBaseURL: gcfg.BrokerBaseURL, BrokerAPIKey: gcfg.BrokerAPIKey, StateKeys: gcfg.StateKeys, Clients: gcfg.Clients,
	}, gateway.Deps{Logger: logging.New(gatewayLog, slog.LevelDebug), Now: time.Now, HTTPClient: tracedBrokerClient(tr)})
	if err != nil {
		t.Fatal(err)
	}
	gwSrv := httptest.NewServer(tr.Handler("gateway", gw.HTTPHandler()))
	defer gwSrv.Close()
	returnSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "back") }))
	defer returnSrv.Close()

	agent := func(method, path string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, gwSrv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+keys["AGENT_KEY"])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
			}
		}
		return resp.StatusCode
	}

	// Connect: request, consent in a browser, callback.
	var conn struct {
		AuthURL      string `json:"authUrl"`
		ConnectionID string `json:"connection_id"`
	}
	if st := agent(http.MethodPost, "/v1/request-connection", map[string]any{
		"user_id": "alice", "provider_name": "demo", "scopes": []string{"openid", "email", "offline_access"},
		"return_url": returnSrv.URL + "/done",
	}, &conn); st != 200 {
		t.Fatalf("request-connection: %d", st)
	}
	b := testenv.NewBrowser(t)
	page, body, status := b.Get(conn.AuthURL)
	if status != 200 {
		t.Fatalf("consent page: %d", status)
	}
	action, form, err := testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("username", "alice")
	form.Set("decision", "approve")
	if final, _, status := b.PostForm(action, form); status != 200 || final.Path != "/done" || final.Query().Get("status") != "success" {
		t.Fatalf("consent landed on %d %s", status, final)
	}

	type tokenAnswer struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	var first tokenAnswer
	if st := agent(http.MethodGet, "/v1/token/"+conn.ConnectionID, nil, &first); st != 200 || first.AccessToken == "" {
		t.Fatalf("first token read: %d", st)
	}

	// Wait into the refresh margin (a third of the 3 s lifetime), then
	// read: this read refreshes.
	time.Sleep(2200 * time.Millisecond)
	before := len(exp.GetSpans())
	logMark := brokerLog.Len()
	var second tokenAnswer
	if st := agent(http.MethodGet, "/v1/token/"+conn.ConnectionID, nil, &second); st != 200 {
		t.Fatalf("second token read: %d", st)
	}
	if second.AccessToken == "" || second.AccessToken == first.AccessToken {
		t.Fatal("the second read did not refresh the token")
	}

	spans := exp.GetSpans().Snapshots()
	read := spans[before:]
	var root trace.SpanContext
	for _, s := range read {
		if s.SpanKind() == trace.SpanKindServer && attr(s.Attributes(), "dromos.service") == "gateway" &&
			s.Name() == "GET /v1/token/{connection_id...}" {
			root = s.SpanContext()
		}
	}
	if !root.IsValid() {
		t.Fatalf("no gateway token read span among the read's %d spans", len(read))
	}
	// want: each span the read must hold, found by a predicate.
	want := map[string]spanMatch{
		"gateway → broker call": func(_ string, k trace.SpanKind, a map[string]string) bool {
			return k == trace.SpanKindClient && a["dromos.peer"] == "broker"
		},
		"broker token read": func(n string, k trace.SpanKind, a map[string]string) bool {
			return k == trace.SpanKindServer && a["dromos.service"] == "broker" && n == "GET /connections/{id}/token"
		},
		"refresh":        func(n string, _ trace.SpanKind, _ map[string]string) bool { return n == "token.refresh" },
		"token endpoint": func(n string, _ trace.SpanKind, a map[string]string) bool { return n == "oauth.token refresh_token" },
		"provider call": func(_ string, k trace.SpanKind, a map[string]string) bool {
			return k == trace.SpanKindClient && a["dromos.peer"] == "provider"
		},
		"database query": func(n string, _ trace.SpanKind, a map[string]string) bool {
			return a["db.system.name"] == "postgresql" && strings.HasPrefix(n, "db ")
		},
	}
	requireTrace(t, "the refreshing read", read, root, want)

	// The same read over gRPC, called with a traceparent of the agent's
	// own: the gateway's gRPC server span continues it, and the broker
	// call, the broker's read and its query join that trace.
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcSrv := gw.GRPCServer(tr.GRPCServerOptions("gateway")...)
	go grpcSrv.Serve(grpcLn)
	defer grpcSrv.Stop()
	cc, err := grpc.NewClient(grpcLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	agentTrace, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	agentSpan, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	before = len(exp.GetSpans())
	gctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+keys["AGENT_KEY"],
		"traceparent", "00-"+agentTrace.String()+"-"+agentSpan.String()+"-01")
	third, err := dromosv1.NewGatewayClient(cc).GetToken(gctx, &dromosv1.GetTokenRequest{ConnectionId: conn.ConnectionID})
	if err != nil {
		t.Fatalf("gRPC token read: %v", err)
	}
	if third.GetAccessToken() != second.AccessToken {
		t.Fatal("the gRPC read did not serve the refreshed token")
	}
	grpcRead := exp.GetSpans().Snapshots()[before:]
	var grpcRoot trace.SpanContext
	for _, s := range grpcRead {
		a := attrMap(s.Attributes())
		if s.SpanKind() == trace.SpanKindServer && s.Name() == "/dromos.v1.Gateway/GetToken" && a["dromos.service"] == "gateway" &&
			a["rpc.system"] == "grpc" && a["rpc.method"] == "GetToken" && a["rpc.grpc.status_code"] == "0" {
			grpcRoot = s.SpanContext()
			if s.Parent().SpanID() != agentSpan {
				t.Errorf("the gRPC server span's parent is %s, not the agent's %s", s.Parent().SpanID(), agentSpan)
			}
		}
	}
	if !grpcRoot.IsValid() {
		t.Fatalf("no gateway gRPC GetToken span among the gRPC read's %d spans", len(grpcRead))
	}
	if grpcRoot.TraceID() != agentTrace {
		t.Errorf("the gRPC read is in trace %s, not the agent's %s", grpcRoot.TraceID(), agentTrace)
	}
	// The gateway's log line for the call carries the agent's trace.
	if !strings.Contains(gatewayLog.String(), `"trace_id":"`+agentTrace.String()+`"`) {
		t.Errorf("no gateway log line of the gRPC read carries trace_id %s:\n%s", agentTrace, gatewayLog.String())
	}
	requireTrace(t, "the gRPC read", grpcRead, grpcRoot, map[string]spanMatch{
		"gateway → broker call": want["gateway → broker call"],
		"broker token read":     want["broker token read"],
		"database query":        want["database query"],
	})
	spans = exp.GetSpans().Snapshots()

	// No secret in any span of the whole run (consent, callback, exchange,
	// both reads): names, attributes, events, status, resource.
	secrets := []string{first.AccessToken, second.AccessToken, first.RefreshToken, second.RefreshToken, clientSecret}
	for _, k := range keys {
		secrets = append(secrets, k)
	}
	for _, s := range spans {
		var texts []string
		texts = append(texts, s.Name(), s.Status().Description)
		for _, kv := range append(s.Attributes(), s.Resource().Attributes()...) {
			if logging.IsSecretKey(string(kv.Key)) {
				t.Errorf("span %s has an attribute named %s", s.Name(), kv.Key)
			}
			texts = append(texts, string(kv.Key), kv.Value.String())
		}
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			for _, kv := range e.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, txt := range texts {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(txt, sec) {
					t.Errorf("span %s holds a secret in %q", s.Name(), txt)
				}
			}
			if strings.Contains(txt, "code=") || signedStartPath.MatchString(txt) || strings.Contains(txt, "state=") {
				t.Errorf("span %s records a URL with a code or state: %q", s.Name(), txt)
			}
		}
	}

	// The broker's log lines for the read carry its trace id.
	readLog := brokerLog.String()[logMark:]
	if !strings.Contains(readLog, `"trace_id":"`+root.TraceID().String()+`"`) {
		t.Errorf("no broker log line of the read carries trace_id %s:\n%s", root.TraceID(), readLog)
	}
}

// signedStartPath is a consent path with its state in it (the route
// pattern "/auth/start/{state}" is fine).
var signedStartPath = regexp.MustCompile(`/auth/start/[^{]`)

func attr(kvs []attributeKV, key string) string { return attrMap(kvs)[key] }

func mustKey(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := runKeygen(context.Background(), nil, ioSet{&b, io.Discard}, nil); err != nil {
		t.Fatal(err)
	}
	line := strings.SplitN(b.String(), "\n", 2)[0]
	return strings.SplitN(line, "=", 2)[1]
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

type attributeKV = attribute.KeyValue

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// spanMatch says whether a span is the one looked for.
type spanMatch func(name string, kind trace.SpanKind, attrs map[string]string) bool

// requireTrace checks that read holds a span for each of want, each in
// root's trace with parents leading to root.
func requireTrace(t *testing.T, label string, read []sdktrace.ReadOnlySpan, root trace.SpanContext, want map[string]spanMatch) {
	t.Helper()
	byID := map[trace.SpanID]int{}
	for i, s := range read {
		byID[s.SpanContext().SpanID()] = i
	}
	for what, match := range want {
		found := false
		for _, s := range read {
			a := attrMap(s.Attributes())
			if !match(s.Name(), s.SpanKind(), a) {
				continue
			}
			found = true
			if s.SpanContext().TraceID() != root.TraceID() {
				t.Errorf("%s (%s) is in trace %s, not the gateway's %s", what, s.Name(), s.SpanContext().TraceID(), root.TraceID())
			}
			// Its parents lead to the gateway's server span.
			p, hops := s.Parent(), 0
			for p.SpanID() != root.SpanID() && hops < 20 {
				i, ok := byID[p.SpanID()]
				if !ok {
					t.Errorf("%s (%s): parent %s is not a span of this read", what, s.Name(), p.SpanID())
					break
				}
				p, hops = read[i].Parent(), hops+1
			}
		}
		if !found {
			names := []string{}
			for _, s := range read {
				names = append(names, fmt.Sprintf("%s/%s%v", s.Name(), s.SpanKind(), attrMap(s.Attributes())))
			}
			t.Errorf("%s has no %s span; spans: %v", label, what, names)
		}
	}
}
