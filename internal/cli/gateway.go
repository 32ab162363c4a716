package cli

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/tracing"
)

func runGateway(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	fs := newFlags("gateway", "Runs the gateway: the stable v1 REST and gRPC API agents use. It stores no tokens.",
		config.GatewayVars+config.TracingVars, ios)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.LoadGateway(env)
	if err != nil {
		return err
	}
	log := logging.New(ios.err, cfg.LogLevel)
	reg := newRegistry()
	tr, err := startTracing(ctx, cfg.Tracing, "dromos-gateway")
	if err != nil {
		return err
	}
	defer stopTracing(tr, log)
	gw, err := gateway.New(gateway.Config{
		BrokerBaseURL: cfg.BrokerBaseURL, BrokerAPIKey: cfg.BrokerAPIKey,
		StatePublicKeys: cfg.StatePublicKeys, StateKeys: cfg.StateKeys,
		Clients: cfg.Clients, AllowAnonymous: cfg.AllowAnonymous, RateLimit: cfg.RateLimit,
		ConsentRatePerMinute: cfg.ConsentRate, Proxy: cfg.Proxy,
	}, gateway.Deps{Logger: log, Registerer: reg, Gatherer: reg, Now: time.Now, HTTPClient: tracedBrokerClient(tr)})
	if err != nil {
		return err
	}
	lim, err := connLimiter(cfg.MaxConnections, log, reg)
	if err != nil {
		return err
	}
	httpLn, err := listen(net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	grpcLn, err := listen(net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.GRPCPort)))
	if err != nil {
		httpLn.Close()
		return err
	}
	defer closeGateway(gw)
	return runServers(ctx, log,
		httpListener("gateway-http", lim.Listener("gateway-http", httpLn), tr.Handler("gateway", gw.HTTPHandler()), log),
		grpcListener(lim.Listener("gateway-grpc", grpcLn), gw, tr))
}

// closeGateway delivers the gateway's last proxy audit records once its
// servers have stopped, waiting at most 10 s for the broker.
func closeGateway(gw *gateway.Gateway) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw.Close(ctx)
}

// grpcListener serves the gateway's gRPC service, with a server span per
// call when tracing is on (tr may be nil: off); shutdown drains calls
// until the context ends, then stops hard.
func grpcListener(ln net.Listener, gw *gateway.Gateway, tr *tracing.Tracing) listener {
	srv := gw.GRPCServer(tr.GRPCServerOptions("gateway")...)
	return listener{name: "gateway-grpc", ln: ln, serve: srv.Serve, stop: func(ctx context.Context) error {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			srv.Stop()
		}
		return nil
	}}
}
