package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/ratelimit"
)

// Deps are the gateway's injected dependencies.
type Deps struct {
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the gateway's metrics; nil means a private
	// registry (never the global one).
	Registerer prometheus.Registerer
	// Gatherer is what GET /metrics serves. Nil means Registerer when it is
	// also a Gatherer (as a *prometheus.Registry is).
	Gatherer prometheus.Gatherer
	// Now is the clock. Required: pass time.Now in production.
	Now func() time.Time
	// HTTPClient, when set, replaces the tuned keep-alive client used for
	// the broker.
	HTTPClient *http.Client
	// Broker, when set, is the broker the gateway calls instead of a
	// brokerclient for Config.BrokerBaseURL (then unused and may be
	// empty): dromos serve passes one that calls the broker in its own
	// process. The gateway_broker_* metrics count HTTP calls only.
	Broker Broker
}

// Gateway serves the agent-facing API over HTTP and gRPC. It holds no
// per-request state and is safe for concurrent use.
type Gateway struct {
	svc      *service
	auth     *authenticator
	log      *slog.Logger
	now      func() time.Time
	metrics  *metrics
	gatherer prometheus.Gatherer
	handler  http.Handler
	limiter  *ratelimit.Limiter
	// consentLimiter bounds connection requests per agent.
	consentLimiter *ratelimit.Limiter
	// proxy serves /v1/proxy/ (proxy.go).
	proxy *proxyRoute
}

// New checks cfg and builds a Gateway. It makes no network calls.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.validate(deps.Broker != nil); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if deps.Now == nil {
		return nil, errors.New("gateway: Deps.Now is required")
	}
	log := deps.Logger
	if log == nil {
		log = logging.Discard()
	}
	reg, gath := deps.Registerer, deps.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if gath == nil {
			gath = r
		}
	}
	if gath == nil {
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("gateway: Deps.Gatherer is required when Deps.Registerer is not a Gatherer")
		}
		gath = g
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("gateway: register metrics: %w", err)
	}
	states, err := stateVerifier(cfg, deps.Now, log)
	if err != nil {
		return nil, err
	}
	broker := deps.Broker
	if broker == nil {
		client, err := brokerclient.New(brokerclient.Options{
			BaseURL:               cfg.BrokerBaseURL,
			APIKey:                cfg.BrokerAPIKey,
			HTTPClient:            deps.HTTPClient,
			DialTimeout:           cfg.BrokerDialTimeout,
			ResponseHeaderTimeout: cfg.BrokerResponseHeaderTimeout,
			AttemptTimeout:        cfg.BrokerAttemptTimeout,
			Attempts:              cfg.BrokerAttempts,
			RetryBase:             cfg.BrokerRetryBase,
			RetryMax:              cfg.BrokerRetryMax,
			Observe:               m.observeBroker,
			Now:                   deps.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		broker = client
	}
	if len(cfg.Clients) > 0 && cfg.AllowAnonymous {
		log.Warn("GATEWAY_ALLOW_ANONYMOUS is ignored because GATEWAY_API_KEYS is set: every request needs a key")
	}
	if len(cfg.Clients) == 0 {
		log.Warn("gateway accepts anonymous requests: every caller is the one owner \"anonymous\" and reads the others' connections; do not use in production")
	}
	limiter, err := newLimiter(cfg.RateLimit, deps.Now)
	if err != nil {
		return nil, fmt.Errorf("gateway: GATEWAY_RATE_LIMIT: %w", err)
	}
	consentLimiter, err := newConsentLimiter(cfg.ConsentRatePerMinute, deps.Now)
	if err != nil {
		return nil, fmt.Errorf("gateway: GATEWAY_CONSENT_RATE_LIMIT: %w", err)
	}
	g := &Gateway{
		limiter:        limiter,
		consentLimiter: consentLimiter,
		svc:            &service{broker: broker, states: states, log: log, metrics: m, now: deps.Now},
		auth:           &authenticator{clients: append([]ClientKey(nil), cfg.Clients...), anonymous: cfg.AllowAnonymous},
		log:            log,
		now:            deps.Now,
		metrics:        m,
		gatherer:       gath,
	}
	if g.proxy, err = newProxyRoute(cfg.Proxy, g.svc, reg, deps.Now); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.svc.forget = g.proxy.forget
	g.handler = g.routes()
	return g, nil
}

// Close hands the API proxy's queued audit records to the broker and
// stops their sender; ctx bounds the wait. Call it once the servers have
// stopped (records of later calls are dropped and counted).
func (g *Gateway) Close(ctx context.Context) { g.proxy.audit.Close(ctx) }

// HTTPHandler returns the REST API, /health, /metrics and /openapi.yaml.
func (g *Gateway) HTTPHandler() http.Handler { return g.handler }

// gRPC connection limits. Without them a client that sends the HTTP/2
// preface and then nothing keeps its connection (and a file descriptor)
// forever; the process-wide connection cap (internal/netlimit) bounds how
// many such connections exist, these make each one end on its own.
const (
	grpcHandshakeTimeout   = 10 * time.Second // preface and settings must arrive within
	grpcMaxConnectionIdle  = 2 * time.Minute  // no call in flight for this long: closed
	grpcKeepaliveTime      = time.Minute      // server pings a quiet client after this
	grpcKeepaliveTimeout   = 20 * time.Second // and closes it without an answer by then
	grpcMinClientPing      = 20 * time.Second // clients pinging more often are cut off
	grpcMaxConcurrentCalls = 100              // streams per connection
	grpcMaxHeaderList      = 64 << 10         // bytes of headers per call, as the REST limit
)

func connectionOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(grpcHandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: grpcMaxConnectionIdle,
			Time:              grpcKeepaliveTime,
			Timeout:           grpcKeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             grpcMinClientPing,
			PermitWithoutStream: true,
		}),
		grpc.MaxConcurrentStreams(grpcMaxConcurrentCalls),
		grpc.MaxHeaderListSize(grpcMaxHeaderList),
	}
}

// GRPCServer returns a gRPC server with the dromos.v1.Gateway service,
// server reflection and the standard health service (serving) registered.
// Requests are limited to the REST body limit; opts come after the
// gateway's own options and may override that. Interceptors in opts run
// outside the gateway's own (a tracing span started there is in the
// context of the gateway's log lines, as the HTTP middleware's is).
func (g *Gateway) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	all := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(maxRequestBody)}, connectionOptions()...)
	all = append(all, opts...)
	// Chained interceptors run in the order their options come.
	all = append(all, grpc.ChainUnaryInterceptor(g.unaryRequestID))
	s := grpc.NewServer(all...)
	dromosv1.RegisterGatewayServer(s, &grpcServer{g: g})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(dromosv1.Gateway_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return s
}
