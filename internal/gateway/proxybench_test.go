package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/logging"
)

// BenchmarkProxyGet is the API proxy's hot path, a proxied GET with the
// token in the gateway's memory, handler to upstream and back over a
// keep-alive loopback connection (the audit line goes to io.Discard
// through the JSON handler the gateway logs with):
//
//	go test -run '^$' -bench ProxyGet -benchmem ./internal/gateway
func BenchmarkProxyGet(b *testing.B) {
	// The harness helpers take a *testing.T; this one's cleanups never
	// run, which leaves the fakes serving until the process ends.
	var cfg gateway.Config
	_, _, id := proxyHarness(&testing.T{}, func(c *gateway.Config) { cfg = *c })
	gw, err := gateway.New(cfg, gateway.Deps{Logger: logging.New(io.Discard, slog.LevelInfo),
		Registerer: prometheus.NewRegistry(), Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	handler := gw.HTTPHandler()
	req := httptest.NewRequest("GET", "/v1/proxy/"+id+"/small", nil)
	req.Header.Set("Authorization", "Bearer "+keyA)
	w := &benchWriter{h: http.Header{}}
	handler.ServeHTTP(w, req)
	if w.status != 200 {
		b.Fatalf("warm-up: %d %s", w.status, w.body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := &benchWriter{h: http.Header{}}
		handler.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("%d %s", w.status, w.body)
		}
	}
}
