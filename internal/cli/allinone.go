package cli

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/localbroker"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/refresh"
	"github.com/dromos-dev/dromos/internal/state"
)

// runServe is dromos serve: the broker and the gateway in one process,
// from one configuration, the gateway calling the broker in memory. The
// broker's routes (public callback and connect page, its own API) and the
// gateway's agent API keep their own listeners, to be exposed differently.
func runServe(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	fs := newFlags("serve", "Runs the broker and the gateway in one process: the broker on PORT, the gateway's REST API on\n"+
		"GATEWAY_PORT and its gRPC API on GATEWAY_PORT_GRPC. The gateway calls the broker in memory, not over HTTP.",
		config.BrokerVars+config.ServeVars, ios)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.LoadServe(env)
	if err != nil {
		return err
	}
	log := logging.New(ios.err, cfg.Broker.LogLevel)
	reg := newRegistry()
	svc, store, err := buildBroker(ctx, cfg.Broker, log, reg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	defer svc.Close()
	local, err := localbroker.New(svc, time.Now)
	if err != nil {
		return err
	}
	// Its own registry, as in a split deployment: broker and gateway both
	// have a token_refresh_total, and each /metrics shows its own part.
	gwReg := prometheus.NewRegistry()
	gcfg := cfg.Gateway
	// The gateway half verifies states with the public keys only, as a
	// separate gateway would.
	pubs, err := state.PublicKeys(gcfg.StateKeys)
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Config{
		StatePublicKeys: pubs, Clients: gcfg.Clients, AllowAnonymous: gcfg.AllowAnonymous,
		RateLimit: gcfg.RateLimit, ConsentRatePerMinute: gcfg.ConsentRate, Proxy: gcfg.Proxy,
	}, gateway.Deps{Logger: log.With("component", "gateway"), Registerer: gwReg, Gatherer: gwReg, Now: time.Now, Broker: local})
	if err != nil {
		return err
	}
	// Before svc.Close: the last proxy audit records go into the broker's
	// audit queue, which svc.Close then writes.
	defer closeGateway(gw)
	// One cap for the process: its three listeners share its files.
	lim, err := connLimiter(cfg.Broker.MaxConnections, log, reg)
	if err != nil {
		return err
	}
	var lns []net.Listener
	for _, port := range []int{cfg.Broker.Port, gcfg.Port, gcfg.GRPCPort} {
		ln, err := listen(net.JoinHostPort(cfg.Broker.ListenHost, strconv.Itoa(port)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		lns = append(lns, ln)
	}
	warnBrokerSettings(cfg.Broker, log)
	log.Info("broker and gateway ready", "base_url", cfg.Broker.BaseURL, "redirect_uri", cfg.Broker.RedirectURI())
	stopWorker := startWorker(ctx, svc, refresh.AheadOptions{ReadWindow: cfg.Broker.RefreshAheadReadWindow})
	defer stopWorker()
	return runServers(ctx, log,
		httpListener("broker", lim.Listener("broker", lns[0]), svc.Handler(), log),
		httpListener("gateway-http", lim.Listener("gateway-http", lns[1]), gw.HTTPHandler(), log),
		grpcListener(lim.Listener("gateway-grpc", lns[2]), gw, nil))
}
