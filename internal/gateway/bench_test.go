package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/state"
)

// Benchmarks of the gateway's hot path, GET /v1/token/{id}: the agent's key
// checked, the id validated, the broker called over a keep-alive loopback
// connection, its answer checked and written again. The broker is a
// constant answer of the shape the real broker sends, so the figures are
// the gateway's own work plus a fixed cost for the fake:
//
//	go test -run '^$' -bench Token -benchmem ./internal/gateway

// benchBrokerAnswers are broker token answers, byte for byte as the broker
// writes them (members sorted, a trailing newline).
var benchBrokerAnswers = map[string]string{
	// What dromos-bench reads: no extras besides expires_at_source.
	"plain": `{"access_token":"at-0000000000000000000000000000000000000001","expires_at":"2030-01-01T01:00:00Z",` +
		`"expires_at_source":"expires_in","expires_in":3599,"provider":"bench","scope":"read write","token_type":"Bearer"}` + "\n",
	// An OpenID provider with extras of several JSON types.
	"extras": `{"access_token":"at-0000000000000000000000000000000000000001","expires_at":"2030-01-01T01:00:00Z",` +
		`"expires_at_source":"expires_in","expires_in":3599,"ext_expires_in":3599,"flags":{"a":true},` +
		`"id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2ln","provider":"microsoft","scope":"openid email",` +
		`"tenant":"contoso","token_type":"Bearer"}` + "\n",
}

type benchWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// roundTripFunc serves the broker in-process.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkToken runs the gateway against the broker over loopback HTTP
// (transport=loopback: the real keep-alive transport, so ns/op includes
// socket round trips and the fake broker's own work) and in-process
// (transport=inproc: an http.Client whose transport calls the fake broker
// directly, so ns/op is close to the gateway's own CPU per read).
func BenchmarkToken(b *testing.B) {
	for _, transport := range []string{"loopback", "inproc"} {
		for _, name := range []string{"plain", "extras"} {
			b.Run("transport="+transport+"/answer="+name, func(b *testing.B) {
				benchToken(b, transport == "inproc", benchBrokerAnswers[name])
			})
		}
	}
}

func benchToken(b *testing.B, inproc bool, answer string) {
	const id = "0b5c2a0e-7c1f-4a53-9d7e-3f1f3c2b9a10"
	fake := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != brokerKey || r.URL.Path != "/connections/"+id+"/token" ||
			r.URL.Query().Get("client_name") != "agent-a" {
			http.Error(w, `{"code":"not_found","message":"connection not found"}`, http.StatusNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		_, _ = io.WriteString(w, answer)
	})
	brk := httptest.NewServer(fake)
	b.Cleanup(brk.Close)
	var hc *http.Client // nil: the gateway's own keep-alive client
	if inproc {
		hc = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			rec := httptest.NewRecorder()
			fake.ServeHTTP(rec, r)
			return rec.Result(), nil
		})}
	}
	clients, err := gateway.ParseClientKeys("agent-a:" + keyA)
	if err != nil {
		b.Fatal(err)
	}
	key := stateKey(7)
	gw, err := gateway.New(gateway.Config{
		BrokerBaseURL: brk.URL, BrokerAPIKey: brokerKey, StateKeys: []state.Key{key}, Clients: clients,
	}, gateway.Deps{
		Logger:     logging.New(io.Discard, slog.LevelInfo), // LOG_LEVEL=info, as dromos-bench runs it
		Registerer: prometheus.NewRegistry(),
		Now:        time.Now,
		HTTPClient: hc,
	})
	if err != nil {
		b.Fatal(err)
	}
	h := gw.HTTPHandler()
	req, err := http.NewRequest(http.MethodGet, "http://gateway/v1/token/"+id, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "127.0.0.1:50000"
	req.RequestURI = req.URL.RequestURI()
	req.Header.Set("Authorization", "Bearer "+keyA)
	req.Header.Set("User-Agent", "dromos-bench")
	w := &benchWriter{h: http.Header{}}

	// Check the answer once, outside the measurement: the broker's members,
	// none lost and none added.
	h.ServeHTTP(w, req)
	var got, want map[string]any
	if w.status != http.StatusOK || json.Unmarshal(w.body, &got) != nil || json.Unmarshal([]byte(answer), &want) != nil {
		b.Fatalf("token: %d %s", w.status, w.body)
	}
	if !reflect.DeepEqual(got, want) {
		b.Fatalf("token answer %s\ndiffers from the broker's %s", w.body, answer)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status, w.body = 0, w.body[:0]
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("token: status %d", w.status)
		}
	}
}
