package cli

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/tracing"
)

// startTracing builds the process's tracer provider from the OTEL_*
// configuration: OTLP export when an endpoint is set, off otherwise.
func startTracing(ctx context.Context, cfg tracing.Config, service string) (*tracing.Tracing, error) {
	return tracing.New(ctx, cfg, tracing.Options{ServiceName: service, Version: Version})
}

// stopTracing flushes the spans still buffered (for up to 5 s).
func stopTracing(tr *tracing.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		log.Warn("flushing traces at shutdown failed", "error", err)
	}
}

// tracedBrokerClient is the gateway's client for the broker with a span
// and a W3C traceparent on every call; nil (the gateway's own tuned
// client) when tracing is off.
func tracedBrokerClient(tr *tracing.Tracing) *http.Client {
	if !tr.Enabled() {
		return nil
	}
	hc := brokerclient.NewHTTPClient(brokerclient.DefaultDialTimeout, brokerclient.DefaultResponseHeaderTimeout)
	hc.Transport = tr.Transport("broker", hc.Transport)
	return hc
}
