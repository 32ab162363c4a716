package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/dromos-dev/dromos/internal/apikey"
	"github.com/dromos-dev/dromos/internal/auditq"
	"github.com/dromos-dev/dromos/internal/catalog"
	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/devicepoll"
	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/mcpconnect"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/readmark"
	"github.com/dromos-dev/dromos/internal/refresh"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/rejections"
	"github.com/dromos-dev/dromos/internal/revocation"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/stepup"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/internal/webhook/delivery"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
)

// Config is what the broker's behaviour depends on.
type Config struct {
	BaseURL      string // public URL, no trailing slash
	RedirectPath string // e.g. /auth/callback

	APIKeys          [][32]byte // SHA-256 of accepted API keys
	RequireAPIKey    bool
	RequireAllowlist bool
	AllowedCIDRs     []netip.Prefix
	// TrustedProxies are the reverse proxies whose X-Forwarded-For /
	// Forwarded headers are believed (rightmost untrusted hop).
	TrustedProxies       []netip.Prefix
	EnforceReturnURL     bool
	AllowedReturnDomains []string
	ExposeRefreshToken   bool
	// ExposeIDToken puts the provider's id_token in every token answer;
	// otherwise only callers asking with id_token=true get it.
	ExposeIDToken bool
	// InsecureSkipBrowserBinding hands agents the provider's URL directly
	// and accepts callbacks without the flow cookie. It MUST NOT be used
	// where an authUrl can leak: anyone holding it could complete consent
	// with their own account into a connection the agent trusts.
	InsecureSkipBrowserBinding bool
	// CallbackRatePerMinute and ConsentRatePerMinute limit each client IP
	// on /auth/start + /auth/callback and on consent creation (0: off).
	CallbackRatePerMinute int
	ConsentRatePerMinute  int
	// ProviderNetGuard (production) refuses provider endpoints that are not
	// https or that resolve to non-public addresses.
	ProviderNetGuard bool
	// ExplainDiscoveryErrors (outside production) puts the full cause of
	// a failed discovery at provider registration, addresses included, in
	// the answer; otherwise only its class ("HTTP 404", "unreachable").
	ExplainDiscoveryErrors bool
	// MCPClientMetadataURL is the client_id the broker uses at MCP
	// authorization servers supporting Client ID Metadata Documents; ""
	// turns them off. The document is served at MCPClientMetadataPath.
	MCPClientMetadataURL  string
	MCPClientMetadataPath string
	// AuditRetention: audit events older than this are pruned by the
	// worker; 0 keeps them forever.
	AuditRetention time.Duration
	// MaxPendingPerClient caps the pending connections one client (agent)
	// may have at once; over it a new consent is answered 429
	// too_many_pending. 0 turns the cap off.
	MaxPendingPerClient int
	// ConnectionRetention: connections that failed before ever being
	// active (denied, expired or broken consents) are purged by the worker
	// this long after their last change; 0 keeps them forever.
	ConnectionRetention time.Duration

	// ConsentTTL is how long a pending connection waits for its callback.
	ConsentTTL time.Duration
	// RefreshMargin: a token with less life left is refreshed before it is
	// returned (default 60 s), bounded by a third of the token's lifetime.
	RefreshMargin time.Duration
	// LeaseTTL bounds how long one broker may hold a connection's refresh
	// lease (default 30 s); it must exceed the provider call timeout.
	LeaseTTL time.Duration
	// LockWait is how long a reader waits for another broker's refresh
	// before answering 503 (default 35 s).
	LockWait time.Duration
	// StepUpLimits bound repeated step-ups of one connection (zero:
	// stepup.DefaultLimits).
	StepUpLimits stepup.Limits

	// Webhooks tunes webhook delivery (zero: the defaults).
	Webhooks delivery.Config
	// Revocation tunes retries of failed revocations (zero: defaults).
	Revocation revocation.Options
	// DevicePoll tunes the device grant poller (zero: defaults).
	DevicePoll devicepoll.Options
	// RejectionAuditWindow is how long refused callbacks are counted per
	// reason and client address before one audit row each is written
	// (zero: one minute).
	RejectionAuditWindow time.Duration
}

// Deps are the broker's collaborators, built once at start.
type Deps struct {
	Store     storage.Storage
	Vault     *vault.Keyring
	State     *state.Signer
	Exchange  *exchange.Client
	Discovery *discovery.Cache
	IDTokens  *idtoken.Verifier
	// Catalog resolves provider templates; nil disables them.
	Catalog *catalog.Catalog
	// MCP discovers MCP servers; nil turns mcp_server_url off.
	MCP *mcp.Discoverer
	// HTTPClient makes userinfo requests (redirects are never followed);
	// nil skips the optional userinfo fetch.
	HTTPClient *http.Client
	// WebhookClient sends webhook messages (nil: delivery.NewClient,
	// guarded like provider calls).
	WebhookClient *http.Client

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Now        func() time.Time
	Rand       io.Reader
	// Tracer, when set, records refresh spans (internal/tracing).
	Tracer trace.Tracer
}

// Broker serves the broker API.
type Broker struct {
	cfg       Config
	store     storage.Storage
	vault     *vault.Keyring
	state     *state.Signer
	xchg      *exchange.Client
	idt       *idtoken.Verifier
	providers *registry.Registry
	// userinfoClient never follows redirects.
	userinfoClient *http.Client
	log            *slog.Logger
	now            func() time.Time
	rand           io.Reader
	m              *metrics
	gather         prometheus.Gatherer
	handler        http.Handler
	// inProcess is the API for a gateway in this process (local.go).
	inProcess  http.Handler
	refresher  *refresh.Refresher
	guards     *guards
	auditq     *auditq.Queue
	reads      *readmark.Marks
	stepups    *stepup.Manager
	mcp        *mcpconnect.Connector
	webhooks   *endpoint.Manager
	dispatcher *delivery.Dispatcher
	revoker    *revocation.Revoker
	devices    *devicepoll.Poller
	rejections *rejections.Aggregator
}

// New builds a broker.
func New(cfg Config, d Deps) (*Broker, error) {
	if d.Store == nil || d.Vault == nil || d.State == nil || d.Exchange == nil || d.Discovery == nil || d.IDTokens == nil {
		return nil, errors.New("broker: Store, Vault, State, Exchange, Discovery and IDTokens are required")
	}
	if cfg.BaseURL == "" || !strings.HasPrefix(cfg.RedirectPath, "/") {
		return nil, errors.New("broker: BaseURL and an absolute RedirectPath are required")
	}
	if cfg.ConsentTTL <= 0 {
		cfg.ConsentTTL = 10 * time.Minute
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	b := &Broker{
		cfg: cfg, store: d.Store, vault: d.Vault, state: d.State, xchg: d.Exchange,
		idt: d.IDTokens, userinfoClient: noRedirects(d.HTTPClient), log: d.Logger, now: d.Now, rand: d.Rand,
		m: newMetrics(d.Registerer), gather: d.Gatherer, stepups: stepup.New(d.Store, cfg.StepUpLimits),
	}
	b.refresher = refresh.New(refresh.Config{Margin: cfg.RefreshMargin, LeaseTTL: cfg.LeaseTTL, LockWait: cfg.LockWait},
		refresh.Deps{Store: d.Store, Vault: d.Vault, Exch: d.Exchange, Grants: refreshGrants{b}, Idle: idleLifetimes{d.Store}, Metrics: b.m.refresh,
			Logger: d.Logger, Now: d.Now, Tracer: d.Tracer})
	providers, err := registry.New(registry.Deps{Store: d.Store, Vault: d.Vault, Discovery: d.Discovery,
		Catalog: d.Catalog, NetGuard: cfg.ProviderNetGuard,
		ExplainErrors: cfg.ExplainDiscoveryErrors, Audit: b.audit, Now: d.Now,
		Logger: d.Logger, Registerer: d.Registerer})
	if err != nil {
		return nil, err
	}
	b.providers = providers
	b.revoker, err = revocation.New(cfg.Revocation, revocation.Deps{Store: d.Store, Vault: d.Vault, Client: d.Exchange,
		Resolve: b.revocationTarget, Audit: b.auditRevocation, Logger: d.Logger, Registerer: d.Registerer, Now: d.Now, Rand: d.Rand})
	if err != nil {
		return nil, err
	}
	b.devices, err = devicepoll.New(cfg.DevicePoll, devicepoll.Deps{Store: d.Store, Vault: d.Vault, Client: d.Exchange,
		Resolve: b.deviceTokenEndpoint, Granted: b.deviceGranted, Failed: b.deviceFailed,
		Budget: b.deviceBudget, Throttled: b.deviceThrottled, Logger: d.Logger, Registerer: d.Registerer, Now: d.Now})
	if err != nil {
		return nil, err
	}
	if d.MCP != nil {
		b.mcp, err = mcpconnect.New(mcpconnect.Config{RedirectURI: b.RedirectURI(), ClientMetadataURL: cfg.MCPClientMetadataURL},
			mcpconnect.Deps{Store: d.Store, Vault: d.Vault, Providers: providers, Discoverer: d.MCP, Now: d.Now})
		if err != nil {
			return nil, err
		}
	}
	g, err := newGuards(cfg, d.Now)
	if err != nil {
		return nil, err
	}
	b.guards = g
	b.auditq = auditq.New(d.Store, d.Logger, b.m.auditDropped)
	b.rejections = rejections.New(d.Store, rejections.Options{Window: cfg.RejectionAuditWindow, Now: d.Now, Logger: d.Logger})
	if err := b.newWebhooks(cfg, d); err != nil {
		return nil, err
	}
	b.reads = readmark.New(d.Store, readmark.Options{}, b.m.readMarks, d.Logger, d.Now)
	b.handler = httpapi.Middleware(b.routes(b.guard), b.log, b.now, b.m.observeHTTP)
	b.inProcess = httpapi.Middleware(b.routes(markInProcess), b.log, b.now, b.m.observeHTTP)
	return b, nil
}

// EnsureProvider registers prof, or replaces the provider already holding
// its name, with the same validation as the API. dromos dev uses it to keep
// its demo provider registered across restarts.
func (b *Broker) EnsureProvider(ctx context.Context, prof provider.Profile) (string, error) {
	return b.providers.Ensure(ctx, prof)
}

// Handler is the broker's HTTP handler.
func (b *Broker) Handler() http.Handler { return b.handler }

// RedirectURI is the callback URL to register at providers.
func (b *Broker) RedirectURI() string { return b.cfg.BaseURL + b.cfg.RedirectPath }

type apiFunc func(http.ResponseWriter, *http.Request) error

// routes is the broker's mux; guard wraps the API routes (the network
// guards, or none for the in-process handler).
func (b *Broker) routes(guard func(http.Handler) http.Handler) http.Handler {
	mux := http.NewServeMux()
	guarded := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, guard(b.api(f)))
	}
	b.providers.Routes(guarded)
	b.webhookRoutes(guarded)
	if b.mcp != nil {
		b.mcp.Routes(guarded)
		if b.cfg.MCPClientMetadataPath != "" {
			mux.Handle("GET "+b.cfg.MCPClientMetadataPath, b.api(b.mcp.ServeMetadataDocument))
		}
	}
	guarded("POST /auth/consent-spec", b.consentSpec)
	guarded("POST /connections/confirm", b.confirmConnection)
	guarded("GET /connections", b.listConnections)
	guarded("GET /connections/{id}", b.getConnection)
	guarded("GET /connections/{id}/token", b.getToken)
	guarded("POST /connections/{id}/refresh", b.refreshToken)
	guarded("DELETE /connections/{id}", b.deleteConnection)
	guarded("GET /audit", b.listAudit)
	guarded("POST /audit/proxy-calls", b.recordProxyCalls)

	mux.HandleFunc("GET "+b.cfg.RedirectPath, func(w http.ResponseWriter, r *http.Request) {
		if !b.limited(b.guards.callback, w, r) {
			b.callback(w, r)
		}
	})
	mux.HandleFunc("GET "+confirmPath, func(w http.ResponseWriter, r *http.Request) {
		if !b.limited(b.guards.callback, w, r) {
			b.confirmBrowser(w, r)
		}
	})
	mux.HandleFunc("GET "+startPath+"{state}", func(w http.ResponseWriter, r *http.Request) {
		if !b.limited(b.guards.callback, w, r) {
			b.start(w, r)
		}
	})
	mux.HandleFunc("POST "+credential.FormAction, func(w http.ResponseWriter, r *http.Request) {
		if !b.limited(b.guards.callback, w, r) {
			b.submitKeyForm(w, r)
		}
	})
	mux.Handle("GET /health", b.api(func(w http.ResponseWriter, _ *http.Request) error {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}))
	mux.Handle("GET /ready", b.api(b.ready))
	if b.gather != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(b.gather, promhttp.HandlerOpts{}))
	}
	mux.Handle("/", b.api(func(_ http.ResponseWriter, r *http.Request) error {
		return httpapi.NoSuchEndpoint(r)
	}))
	return mux
}

func (b *Broker) api(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			httpapi.WriteError(w, r, b.log, b.mapStorageErr(err))
		}
	})
}

// mapStorageErr turns storage outages into 503s; other errors pass.
func (b *Broker) mapStorageErr(err error) error {
	if _, ok := httpapi.As(err); ok {
		return err
	}
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || isConnError(err) {
		return httpapi.Unavailable("database unavailable", 2*time.Second, err)
	}
	return err
}

func isConnError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}

func (b *Broker) ready(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := b.store.Ping(ctx); err != nil {
		return httpapi.Unavailable("database unavailable", 2*time.Second, err)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// guard applies the seed's guards to internal routes: the peer allowlist
// and the API key.
func (b *Broker) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.cfg.RequireAllowlist && !b.allowlisted(r) {
			httpapi.WriteError(w, r, b.log, &httpapi.Error{Status: http.StatusForbidden, Code: "forbidden", Message: "client address not allowed"})
			return
		}
		if b.cfg.RequireAPIKey && !b.keyAllowed(presentedKey(r)) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			httpapi.WriteError(w, r, b.log, httpapi.Unauthorized("missing or invalid API key"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// presentedKey is the one API key r carries ("" when none, or when it
// presents two different ones: package apikey).
func presentedKey(r *http.Request) string {
	// Canonical header names: Values need not allocate to canonicalize.
	key, err := apikey.Presented(r.Header.Values("Authorization"), r.Header.Values("X-Api-Key"))
	if err != nil {
		return ""
	}
	return key
}

// keyAllowed compares against every configured key in constant time, so the
// answer time does not tell which key nearly matched.
func (b *Broker) keyAllowed(key string) bool {
	if key == "" {
		return false
	}
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for _, k := range b.cfg.APIKeys {
		ok |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	return ok == 1
}

func (b *Broker) randReader() io.Reader {
	if b.rand != nil {
		return b.rand
	}
	return rand.Reader
}
