package cli

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// devGateway is the gateway part of dromos dev.
type devGateway struct {
	httpURL, grpcAddr string
	listeners         []listener
}

// startDevGateway wires the gateway into the dev process. Until the gateway
// lands it runs nothing and the banner points at the broker.
func startDevGateway(_ context.Context, _ devFlags, _ string, _ devSecrets, _ *slog.Logger, _ *prometheus.Registry) (devGateway, error) {
	return devGateway{}, nil
}
