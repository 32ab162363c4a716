package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func enabled(t testing.TB) (*Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(context.Background(), Config{}, Options{ServiceName: "test", Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr, exp
}

// TestOffWrapsNothing: with no endpoint, the middleware and transport are
// what they wrap, and pgx gets no tracer, so the hot path is unchanged.
func TestOffWrapsNothing(t *testing.T) {
	for name, tr := range map[string]*Tracing{"nil": nil, "no endpoint": mustNew(t, Config{})} {
		t.Run(name, func(t *testing.T) {
			h := http.NotFoundHandler()
			if got := tr.Handler("broker", h); reflect.ValueOf(got).Pointer() != reflect.ValueOf(h).Pointer() {
				t.Error("Handler wrapped the handler with tracing off")
			}
			rt := http.DefaultTransport
			if got := tr.Transport("provider", rt); got != rt {
				t.Error("Transport wrapped the transport with tracing off")
			}
			if tr.QueryTracer() != nil {
				t.Error("QueryTracer is set with tracing off")
			}
			if tr.Enabled() {
				t.Error("Enabled with tracing off")
			}
		})
	}
}

func mustNew(t *testing.T, cfg Config) *Tracing {
	t.Helper()
	tr, err := New(context.Background(), cfg, Options{ServiceName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestPropagation: a client span's traceparent reaches the server, which
// continues the trace; the server span is named by the mux pattern and
// records neither path nor query.
func TestPropagation(t *testing.T) {
	tr, exp := enabled(t)
	var seen string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/start/{state}", func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("Traceparent")
		w.WriteHeader(http.StatusTeapot)
	})
	srv := httptest.NewServer(tr.Handler("broker", mux))
	defer srv.Close()
	hc := &http.Client{Transport: tr.Transport("broker", http.DefaultTransport)}

	ctx, parent := tr.Tracer().Start(context.Background(), "caller")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/auth/start/SIGNEDSTATE?code=SECRETCODE", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	parent.End()
	if req.Header.Get("Traceparent") != "" {
		t.Error("the transport changed the caller's request")
	}
	if !strings.Contains(seen, parent.SpanContext().TraceID().String()) {
		t.Fatalf("server saw traceparent %q, want trace %s", seen, parent.SpanContext().TraceID())
	}
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want caller, client and server", len(spans))
	}
	var server, client tracetest.SpanStub
	for _, s := range spans {
		switch s.SpanKind {
		case trace.SpanKindServer:
			server = s
		case trace.SpanKindClient:
			client = s
		}
		for _, kv := range s.Attributes {
			if v := kv.Value.String(); strings.Contains(v, "SIGNEDSTATE") || strings.Contains(v, "SECRETCODE") {
				t.Errorf("span %s attribute %s = %q records the path or query", s.Name, kv.Key, v)
			}
		}
		if s.SpanContext.TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %s in another trace", s.Name)
		}
	}
	if server.Name != "GET /auth/start/{state}" || server.Parent.SpanID() != client.SpanContext.SpanID() {
		t.Errorf("server span %q with parent %s, want the route pattern under the client span %s", server.Name, server.Parent.SpanID(), client.SpanContext.SpanID())
	}
}

func TestStartWithoutTracerLeavesTheCallersSpan(t *testing.T) {
	tr, exp := enabled(t)
	ctx, parent := tr.Tracer().Start(context.Background(), "caller")
	_, span := Start(ctx, nil, "child")
	span.End() // must not end the caller's span
	if len(exp.GetSpans()) != 0 {
		t.Fatal("ending Start's no-op span ended the caller's span")
	}
	parent.End()
}

func TestOperation(t *testing.T) {
	for sql, want := range map[string]string{
		"SELECT 1":                       "SELECT",
		"  update connections set x=$1":  "UPDATE",
		"(SELECT 1) UNION (SELECT 2)":    "SELECT",
		"WITH t AS (SELECT 1) SELECT 1":  "WITH",
		"$1":                             "QUERY",
		"":                               "QUERY",
		"insert into tokens values ($1)": "INSERT",
	} {
		if got := operation(sql); got != want {
			t.Errorf("operation(%q) = %q, want %q", sql, got, want)
		}
	}
}

// BenchmarkHandler compares a request through the middleware with
// tracing off (the handler itself) and on (a span per request, exported
// to memory).
func BenchmarkHandler(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	on, _ := enabled(b)
	for name, tr := range map[string]*Tracing{"off": nil, "on": on} {
		b.Run(name, func(b *testing.B) {
			wrapped := tr.Handler("broker", h)
			req := httptest.NewRequest(http.MethodGet, "/connections/x/token", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				wrapped.ServeHTTP(w, req)
			}
		})
	}
}
