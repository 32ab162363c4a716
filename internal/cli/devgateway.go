package cli

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/netlimit"
	"github.com/dromos-dev/dromos/internal/proxy"
	"github.com/dromos-dev/dromos/internal/state"
)

// devGateway is the gateway part of dromos dev.
type devGateway struct {
	httpURL, grpcAddr string
	listeners         []listener
}

// startDevGateway runs the gateway in the dev process, open to anonymous
// agents (the banner says so), talking to the dev broker over loopback HTTP
// exactly as a separate gateway would.
func startDevGateway(_ context.Context, f devFlags, brokerURL string, s devSecrets, log *slog.Logger, lim *netlimit.Limiter) (devGateway, error) {
	// Its own registry: the gateway's /metrics shows the gateway, as it
	// would in production.
	reg := prometheus.NewRegistry()
	// Like a production gateway, it gets only the state public key.
	stateKeys, err := config.StateKeys(config.Env{"STATE_KEY": s.StateKey})
	if err != nil {
		return devGateway{}, err
	}
	pubs, err := state.PublicKeys(stateKeys)
	if err != nil {
		return devGateway{}, err
	}
	cfg, err := config.LoadGateway(config.Env{
		"BROKER_BASE_URL": brokerURL, "STATE_PUBLIC_KEYS": state.FormatPublicKeys(pubs), "GATEWAY_ALLOW_ANONYMOUS": "true",
	})
	if err != nil {
		return devGateway{}, err
	}
	gw, err := gateway.New(gateway.Config{
		BrokerBaseURL: cfg.BrokerBaseURL, StatePublicKeys: cfg.StatePublicKeys, AllowAnonymous: true,
		// The demo provider's API is on this machine.
		Proxy: proxy.Config{AllowPrivate: true},
	}, gateway.Deps{Logger: log.With("component", "gateway"), Registerer: reg, Gatherer: reg, Now: time.Now})
	if err != nil {
		return devGateway{}, err
	}
	httpLn, err := listen(net.JoinHostPort(f.listen, strconv.Itoa(f.gatewayPort)))
	if err != nil {
		return devGateway{}, err
	}
	grpcLn, err := listen(net.JoinHostPort(f.listen, strconv.Itoa(f.grpcPort)))
	if err != nil {
		httpLn.Close()
		return devGateway{}, err
	}
	// Anonymous agents: refuse DNS-rebound browser requests (devhost.go).
	h := devHostGuard(gw.HTTPHandler(), log, f.listen, urlHost(brokerURL))
	return devGateway{
		httpURL:  "http://" + publicHostPort(httpLn.Addr(), f.listen),
		grpcAddr: publicHostPort(grpcLn.Addr(), f.listen),
		listeners: []listener{
			httpListener("gateway-http", lim.Listener("gateway-http", httpLn), h, log),
			closingGateway(grpcListener(lim.Listener("gateway-grpc", grpcLn), gw, nil), gw),
		},
	}, nil
}

// closingGateway is l whose stop, once l has stopped, closes the gateway:
// its last proxy audit records go to the broker, which must still be
// serving (dev stops the gateway's listeners before the broker's).
func closingGateway(l listener, gw *gateway.Gateway) listener {
	stop := l.stop
	l.stop = func(ctx context.Context) error {
		err := stop(ctx)
		gw.Close(ctx)
		return err
	}
	return l
}
