package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/catalog"
	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/netguard"
	"github.com/dromos-dev/dromos/internal/revocation"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokencache"
	"github.com/dromos-dev/dromos/internal/tracing"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/internal/webhook/delivery"
)

func runBroker(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	fs := newFlags("broker", "Runs the broker: provider registry, consent, the public OAuth callback, the encrypted token vault.",
		config.BrokerVars+config.TracingVars, ios)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.LoadBroker(env)
	if err != nil {
		return err
	}
	log := logging.New(ios.err, cfg.LogLevel)
	reg := newRegistry()
	tr, err := startTracing(ctx, cfg.Tracing, "dromos-broker")
	if err != nil {
		return err
	}
	defer stopTracing(tr, log)
	svc, store, err := buildBrokerTraced(ctx, cfg, log, reg, nil, tr)
	if err != nil {
		return err
	}
	defer store.Close()
	defer svc.Close()
	lim, err := connLimiter(cfg.MaxConnections, log, reg)
	if err != nil {
		return err
	}
	ln, err := listen(net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	warnBrokerSettings(cfg, log)
	log.Info("broker ready", "base_url", cfg.BaseURL, "redirect_uri", cfg.RedirectURI())
	stopWorker := startWorker(ctx, svc, broker.WorkerOptions{ReadWindow: cfg.RefreshAheadReadWindow})
	defer stopWorker()
	return runServers(ctx, log, httpListener("broker", lim.Listener("broker", ln), tr.Handler("broker", svc.Handler()), log))
}

// warnBrokerSettings logs the settings a deployment usually gets wrong.
func warnBrokerSettings(cfg config.Broker, log *slog.Logger) {
	if !cfg.Production {
		log.Warn("DROMOS_ENV is not production: provider endpoints may be plain http or private addresses, and insecure settings are accepted; set DROMOS_ENV=production in a deployment")
	}
	if strings.HasPrefix(cfg.BaseURL, "https://") && len(cfg.TrustedProxies) == 0 {
		// The broker serves plain HTTP, so an https BASE_URL means a proxy
		// in front: without TRUSTED_PROXIES every browser has its address.
		log.Warn("BASE_URL is https but TRUSTED_PROXIES is empty: every client appears with the proxy's address, so the per-address limits (RATE_LIMIT_CALLBACK, RATE_LIMIT_CONSENT) apply to all users together and audit events carry the proxy's address; set TRUSTED_PROXIES to the proxy's CIDR")
	}
}

// startWorker runs the broker's background worker until the returned stop
// is called (or ctx ends). stop waits for it: refreshes in flight finish
// (they do not follow the context) before the store closes under them.
// Deferred, it also stops the worker when the servers fail on their own.
func startWorker(ctx context.Context, svc *broker.Broker, opts broker.WorkerOptions) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunWorker(ctx, opts)
	}()
	return func() {
		cancel()
		<-done
	}
}

// newRegistry is a fresh Prometheus registry with the process and Go
// collectors, never the global default.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// outboundClient is the base client for provider back-channel calls; each
// package wraps it with its own redirect and size rules.
func outboundClient(production bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Outside production, providers on loopback or a private network are
	// fine (the demo provider, a local Keycloak), but cloud-metadata and
	// link-local addresses are refused at every dial all the same: no
	// provider lives there and they hand out the host's credentials.
	tr.DialContext = netguard.Dialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, true).DialContext
	if production {
		// Every dial is checked against loopback, private, link-local and
		// metadata addresses, so a provider (or its DNS) cannot point the
		// broker at internal services.
		tr = netguard.Transport(false)
	}
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = 15 * time.Second
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// buildBroker opens the store (migrating it) and wires the broker. now may
// be nil for the real clock.
func buildBroker(ctx context.Context, cfg config.Broker, log *slog.Logger, reg *prometheus.Registry, now func() time.Time) (*broker.Broker, storage.Storage, error) {
	return buildBrokerTraced(ctx, cfg, log, reg, now, nil)
}

// buildBrokerTraced is buildBroker recording spans with tr (nil: off):
// provider calls, token endpoint calls, discovery, refreshes, queries.
func buildBrokerTraced(ctx context.Context, cfg config.Broker, log *slog.Logger, reg *prometheus.Registry, now func() time.Time, tr *tracing.Tracing) (*broker.Broker, storage.Storage, error) {
	if now == nil {
		now = time.Now
	}
	ring, err := vault.NewKeyring(cfg.EncryptionKeys[0], cfg.EncryptionKeys[1:]...)
	if err != nil {
		return nil, nil, fmt.Errorf("ENCRYPTION_KEYS: %w", err)
	}
	signer, err := state.NewSigner(cfg.StateKeys[0], cfg.StateKeys[1:], state.Options{Now: now})
	if err != nil {
		return nil, nil, fmt.Errorf("STATE_KEYS: %w", err)
	}
	store, err := database.Open(ctx, cfg.DatabaseURL, database.Options{Logger: log, Migrate: true, QueryTracer: tr.QueryTracer()})
	if err != nil {
		return nil, nil, err
	}
	if cfg.TokenCacheStaleness > 0 {
		cache, err := tokencache.New(store, tokencache.Options{Staleness: cfg.TokenCacheStaleness, Now: now, Logger: log, Registerer: reg})
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		// Stopped by the store's Close, which every caller defers.
		cache.Run(context.WithoutCancel(ctx))
		store = cache
	}
	cat, err := catalog.Load()
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("provider catalog: %w", err)
	}
	hc := outboundClient(cfg.Production)
	hc.Transport = tr.Transport("provider", hc.Transport)
	var tracer trace.Tracer
	if tr.Enabled() {
		tracer = tr.Tracer()
	}
	svc, err := broker.New(broker.Config{
		BaseURL: cfg.BaseURL, RedirectPath: cfg.RedirectPath,
		APIKeys: cfg.APIKeys, RequireAPIKey: cfg.RequireAPIKey,
		RequireAllowlist: cfg.RequireAllowlist, AllowedCIDRs: cfg.AllowedCIDRs,
		EnforceReturnURL: cfg.EnforceReturnURL, AllowedReturnDomains: cfg.AllowedReturnDomains,
		ExposeRefreshToken: cfg.ExposeRefreshToken, ExposeIDToken: cfg.ExposeIDToken, InsecureSkipBrowserBinding: cfg.InsecureSkipBrowserBinding,
		AuditRetention: cfg.AuditRetention,
		TrustedProxies: cfg.TrustedProxies, CallbackRatePerMinute: cfg.CallbackRate, ConsentRatePerMinute: cfg.ConsentRate,
		ProviderNetGuard: cfg.Production, ExplainDiscoveryErrors: !cfg.Production,
		MaxPendingPerClient: cfg.MaxPendingPerClient, ConnectionRetention: cfg.ConnectionRetention,
		MCPClientMetadataURL: cfg.MCPClientMetadataURL, MCPClientMetadataPath: config.MCPClientMetadataPath,
		Webhooks: webhookConfig(cfg),
		Revocation: revocation.Options{RetryFor: cfg.Revocation.RetryPeriod,
			MinBackoff: cfg.Revocation.MinBackoff, MaxBackoff: cfg.Revocation.MaxBackoff},
	}, broker.Deps{
		Store:     store,
		Vault:     ring,
		State:     signer,
		Exchange:  exchange.New(exchange.Options{HTTPClient: hc, Now: now, Logger: log, Tracer: tracer}),
		Discovery: discovery.New(discovery.Options{HTTPClient: hc, Now: now, Logger: log, Metrics: discovery.NewMetrics(reg), Tracer: tracer}),
		Catalog:   cat, HTTPClient: hc,
		MCP:      mcp.New(mcp.Options{HTTPClient: hc, Guard: mcpGuard(cfg.Production)}),
		IDTokens: idtoken.NewVerifier(idtoken.Options{HTTPClient: hc, Now: now, Logger: log, Metrics: idtoken.NewMetrics(reg)}),
		Logger:   log, Registerer: reg, Gatherer: reg, Now: now, Tracer: tracer,
	})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return svc, store, nil
}

// mcpGuard is the check every URL met during MCP discovery passes before it
// is fetched: in production https and public addresses only (the guarded
// transport checks each dial again); elsewhere anything but cloud
// metadata addresses.
func mcpGuard(production bool) mcp.Guard {
	if production {
		return mcp.ProductionGuard(nil)
	}
	return mcp.DevGuard
}

// webhookConfig maps the WEBHOOK_* settings; WEBHOOK_DISABLE_AFTER=0 means
// never, which delivery spells as a negative duration.
func webhookConfig(cfg config.Broker) delivery.Config {
	disable := cfg.WebhookDisableAfter
	if disable == 0 {
		disable = -1
	}
	return delivery.Config{Timeout: cfg.WebhookTimeout, MaxWait: cfg.WebhookRetryMaxWait, DisableAfter: disable}
}
