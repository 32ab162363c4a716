package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dromos-dev/dromos/api"
	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/state"
)

// Secrets used across the tests; the log test looks for each of them.
const (
	keyA      = "agent-a-key-SECRET-1111"
	keyB      = "agent-b-key-SECRET-2222"
	brokerKey = "broker-key-SECRET-3333"
)

func clock() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

func stateKey(fill byte) state.Key {
	return state.Key{ID: fill, Secret: bytes.Repeat([]byte{fill}, state.KeySize)}
}

func newSigner(t testing.TB, k state.Key) *state.Signer {
	t.Helper()
	s, err := state.NewSigner(k, nil, state.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	t    *testing.T
	fb   *fakeBroker
	gw   *gateway.Gateway
	srv  *httptest.Server
	reg  *prometheus.Registry
	logs *syncBuffer
	spec *openapi3.T
}

// newHarness runs a gateway in front of a fake broker. Clients agent-a (plain
// key) and agent-b (sha256 form) are configured unless edit changes that.
func newHarness(t *testing.T, edit ...func(*gateway.Config)) *harness {
	t.Helper()
	key := stateKey(7)
	fb := newFakeBroker(t, newSigner(t, key), brokerKey)
	sum := sha256.Sum256([]byte(keyB))
	clients, err := gateway.ParseClientKeys("agent-a:" + keyA + ", agent-b:sha256:" + hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{
		BrokerBaseURL:        fb.srv.URL,
		BrokerAPIKey:         brokerKey,
		StateKeys:            []state.Key{key},
		Clients:              clients,
		BrokerAttemptTimeout: 5 * time.Second,
		BrokerRetryBase:      time.Millisecond,
		BrokerRetryMax:       5 * time.Millisecond,
	}
	for _, e := range edit {
		e(&cfg)
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(cfg, gateway.Deps{
		Logger:     logging.New(logs, slog.LevelDebug),
		Registerer: reg,
		Now:        clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.HTTPHandler())
	t.Cleanup(srv.Close)
	return &harness{t: t, fb: fb, gw: gw, srv: srv, reg: reg, logs: logs, spec: loadSpec(t)}
}

func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(api.OpenAPI()))
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	return doc
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) envelope(t *testing.T) (code, message string) {
	t.Helper()
	var env struct{ Code, Message string }
	if err := json.Unmarshal(r.body, &env); err != nil || env.Code == "" {
		t.Fatalf("not an error envelope (%d): %s", r.status, r.body)
	}
	return env.Code, env.Message
}

func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

// call sends a request to the gateway, rawPath kept byte for byte, and
// validates the answer against api/openapi.yaml as the operation at
// template. An empty template is for paths the document does not describe
// (unknown routes, wrong methods), whose answers must still be envelopes.
func (h *harness) call(method, rawPath, template string, hdr map[string]string, body string) result {
	h.t.Helper()
	res := h.rawCall(method, rawPath, hdr, body)
	h.validate(method, rawPath, template, res)
	return res
}

// rawCall sends a request without touching t, so that it may run on any
// goroutine; a transport failure comes back as status -1.
func (h *harness) rawCall(method, rawPath string, hdr map[string]string, body string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+rawPath, rd)
	if err != nil {
		return result{status: -1, body: []byte(err.Error())}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		return result{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{status: -1, body: []byte(err.Error())}
	}
	return result{status: resp.StatusCode, header: resp.Header, body: data}
}

// validate checks res against api/openapi.yaml (see call).
func (h *harness) validate(method, rawPath, template string, res result) {
	h.t.Helper()
	if res.status < 0 {
		h.t.Fatalf("%s %s: %s", method, rawPath, res.body)
	}
	u, err := url.Parse(h.srv.URL + rawPath)
	if err != nil {
		h.t.Fatal(err)
	}
	validateResponse(h.t, h.spec, &http.Request{Method: method, URL: u, Header: http.Header{}}, template, res)
}

func validateResponse(t *testing.T, doc *openapi3.T, req *http.Request, template string, res result) {
	t.Helper()
	if err := checkResponse(doc, req, template, res); err != nil {
		t.Fatalf("%s %s answered %d, which api/openapi.yaml does not allow: %v\n%s", req.Method, req.URL.EscapedPath(), res.status, err, res.body)
	}
}

// checkResponse validates one answer against the document.
func checkResponse(doc *openapi3.T, req *http.Request, template string, res result) error {
	if template == "" {
		if res.status < 400 {
			return fmt.Errorf("undocumented path answered %d", res.status)
		}
		if ct := res.header.Get("Content-Type"); ct != "application/json" {
			return fmt.Errorf("error answer with Content-Type %q", ct)
		}
		var v any
		if err := json.Unmarshal(res.body, &v); err != nil {
			return fmt.Errorf("error answer is not JSON: %w", err)
		}
		return doc.Components.Schemas["Error"].Value.VisitJSON(v)
	}
	item := doc.Paths.Value(template)
	if item == nil {
		return fmt.Errorf("no path %s", template)
	}
	op := item.GetOperation(req.Method)
	if op == nil {
		return fmt.Errorf("no operation %s %s", req.Method, template)
	}
	route := &routers.Route{Spec: doc, Path: template, PathItem: item, Method: req.Method, Operation: op}
	opts := &openapi3filter.Options{IncludeResponseStatus: true}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		// Prometheus text and YAML are checked for status and media type only.
		opts.ExcludeResponseBody = true
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, Route: route},
		Status:                 res.status,
		Header:                 res.header,
		Body:                   io.NopCloser(bytes.NewReader(res.body)),
		Options:                opts,
	})
}

// grpcClient serves the gateway's gRPC server on a loopback port.
func (h *harness) grpcClient() (dromosv1.GatewayClient, *grpc.ClientConn) {
	h.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	s := h.gw.GRPCServer()
	go func() { _ = s.Serve(lis) }()
	h.t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	return dromosv1.NewGatewayClient(conn), conn
}

// requestConnection runs a successful request-connection as key's client.
func (h *harness) requestConnection(key string) (id, st string) {
	h.t.Helper()
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(key),
		`{"user_id":"u-42","provider_name":"google","scopes":["openid","email"],"return_url":"https://app.example.com/done?x=1"}`)
	if res.status != http.StatusOK {
		h.t.Fatalf("request-connection: %d %s", res.status, res.body)
	}
	var out struct {
		ConnectionID string `json:"connection_id"`
		State        string `json:"state"`
	}
	res.decode(h.t, &out)
	return out.ConnectionID, out.State
}

// activeToken is a token body as the broker sends it, with provider extras.
func activeToken(access string) map[string]any {
	return map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": 3599,
		"expires_at": "2030-01-01T01:00:00Z", "scope": "openid email",
		"id_token": "idt-SECRET-" + access, "provider": "google",
		"ext_expires_in": 3599, "tenant": "contoso", "flags": map[string]any{"a": true},
	}
}
