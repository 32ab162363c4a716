package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpguts"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/proxy"
	"github.com/dromos-dev/dromos/internal/proxyaudit"
	"github.com/dromos-dev/dromos/internal/secret"
)

// proxyPrefix starts the API proxy's route.
const proxyPrefix = "/v1/proxy/"

// targetTTL is how long a connection's proxy target (its owner check, its
// provider's API bases and injection rule) and its token are trusted from
// memory before the broker is asked again, so that a connection deleted
// or revoked behind the gateway's back stops being proxied within it.
const targetTTL = 30 * time.Second

// proxyRoute wires the proxy package into the gateway: it resolves the
// caller's connection to a target and a token, both cached in memory.
type proxyRoute struct {
	fwd     *proxy.Forwarder
	tokens  *proxy.Tokens
	svc     *service
	now     func() time.Time
	metrics *proxyMetrics
	// audit queues the calls' audit records for the broker.
	audit *proxyaudit.Batcher

	mu      sync.Mutex
	targets map[string]targetEntry
}

type targetEntry struct {
	target proxy.Target
	until  time.Time
}

const maxTargets = 100000

func newProxyRoute(cfg proxy.Config, svc *service, reg prometheus.Registerer, now func() time.Time) (*proxyRoute, error) {
	m, err := newProxyMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &proxyRoute{
		fwd:     proxy.New(cfg, proxy.Deps{Now: now}),
		tokens:  proxy.NewTokens(proxy.TokensOptions{MaxAge: targetTTL, Now: now}),
		svc:     svc,
		now:     now,
		metrics: m,
		audit: proxyaudit.NewBatcher(svc.broker.RecordProxyCalls, proxyaudit.BatcherOptions{Logger: svc.log,
			Dropped: func(reason string, n int) { m.auditDropped.WithLabelValues(reason).Add(float64(n)) }}),
		targets: map[string]targetEntry{},
	}, nil
}

func cacheKey(c Caller, id string) string { return c.Name + "\x00" + id }

// forget drops what the proxy holds for a connection (it was deleted).
func (p *proxyRoute) forget(c Caller, id string) {
	key := cacheKey(c, id)
	p.tokens.Drop(key)
	p.mu.Lock()
	delete(p.targets, key)
	p.mu.Unlock()
}

// target is the caller's connection's proxy target, from memory or from
// the broker (the connection, which must be the caller's, then its
// provider's API configuration).
func (p *proxyRoute) target(ctx context.Context, c Caller, id string) (proxy.Target, error) {
	key := cacheKey(c, id)
	now := p.now()
	p.mu.Lock()
	e, ok := p.targets[key]
	p.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.target, nil
	}
	conn, err := p.svc.ownConnection(ctx, c, id)
	if err != nil {
		if e, ok := httpapi.As(err); ok && e.Status == http.StatusNotFound {
			p.forget(c, id)
		}
		return proxy.Target{}, err
	}
	if conn.ProviderID == "" {
		return proxy.Target{}, &httpapi.Error{Status: http.StatusConflict, Code: proxy.CodeNotConfigured,
			Message: "this connection has no provider the API proxy can reach"}
	}
	api, err := p.svc.broker.ProviderAPI(ctx, conn.ProviderID)
	if err != nil {
		return proxy.Target{}, err
	}
	name := api.Name
	if name == "" {
		name = conn.Provider
	}
	t, err := proxy.Resolve(name, proxy.API{BaseURLs: api.APIBaseURLs, BaseURLProviderData: api.APIBaseURLProviderData, Auth: api.APIAuth},
		conn.ProviderData)
	if err != nil {
		return proxy.Target{}, err
	}
	p.mu.Lock()
	if len(p.targets) >= maxTargets {
		for k, old := range p.targets {
			if !now.Before(old.until) || len(p.targets) >= maxTargets {
				delete(p.targets, k)
			}
		}
	}
	p.targets[key] = targetEntry{target: t, until: now.Add(targetTTL)}
	p.mu.Unlock()
	return t, nil
}

// proxyToken is what the proxy injects for a token answer: the access
// token under the provider's api_auth rule or, for an api_key or basic
// connection, the credential object under its own rule (header name and
// prefix, Authorization: Basic for a user/password pair).
func proxyToken(t brokerclient.Token, err error) (proxy.Token, error) {
	if err != nil {
		return proxy.Token{}, err
	}
	raw, ok := t.Extras["credential"]
	if !ok {
		return proxy.Token{Value: secret.String(t.AccessToken), ExpiresAt: t.ExpiresAt}, nil
	}
	var c credential.Credential
	if err := json.Unmarshal(raw, &c); err != nil {
		return proxy.Token{}, badCredential(errors.New("credential member is not an object of strings"))
	}
	if c.Type != credential.TypeAPIKey && c.Type != credential.TypeBasic {
		return proxy.Token{}, badCredential(fmt.Errorf("credential of type %q", c.Type))
	}
	if c.Type == credential.TypeBasic {
		c.Header = credential.DefaultHeader
	}
	v := c.HeaderValue()
	if !httpguts.ValidHeaderFieldName(c.Header) || !httpguts.ValidHeaderFieldValue(v) || c.Value == "" && c.Type == credential.TypeAPIKey {
		// Never the value in the error: it is the key.
		return proxy.Token{}, badCredential(fmt.Errorf("credential of type %s with an unusable header %q or value", c.Type, c.Header))
	}
	return proxy.Token{Value: secret.String(v), ExpiresAt: t.ExpiresAt, Header: http.CanonicalHeaderKey(c.Header)}, nil
}

func badCredential(cause error) error {
	return httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker sent an unusable credential", cause)
}

// proxyCall is ANY /v1/proxy/{connection_id}/{path...}.
func (g *Gateway) proxyCall(w http.ResponseWriter, r *http.Request, c Caller) {
	p := g.proxy
	start := g.now()
	id := r.PathValue("connection_id")
	rec, err := p.forward(w, r, c, id)
	if rec.Elapsed == 0 {
		rec.Elapsed = g.now().Sub(start)
	}
	status := rec.Status
	if err != nil && !proxy.Aborted(err) {
		if e, ok := httpapi.As(err); ok {
			status = e.Status
		} else {
			status = http.StatusInternalServerError
		}
	}
	g.observeProxy(r.Context(), rec, id, status)
	switch {
	case err == nil:
	case proxy.Aborted(err):
		panic(http.ErrAbortHandler)
	default:
		g.writeError(w, r, err)
	}
}

func (p *proxyRoute) forward(w http.ResponseWriter, r *http.Request, c Caller, id string) (proxy.Record, error) {
	rec := proxy.Record{Agent: c.Name, Method: r.Method}
	if err := checkConnectionID(id); err != nil {
		return rec, err
	}
	escaped, ok := strings.CutPrefix(r.URL.EscapedPath(), proxyPrefix+id)
	if !ok || (escaped != "" && escaped[0] != '/') {
		return rec, httpapi.BadRequest("connection_id must be a lower-case UUID")
	}
	escaped = strings.TrimPrefix(escaped, "/")
	t, err := p.target(r.Context(), c, id)
	if err != nil {
		return rec, err
	}
	base, query := splitBase(r.URL.RawQuery)
	if h := r.Header.Get(proxy.BaseHeader); h != "" {
		if base != "" && base != h {
			return rec, httpapi.BadRequest("the base query parameter and the %s header disagree", proxy.BaseHeader)
		}
		base = h
	}
	key := cacheKey(c, id)
	call := proxy.Call{
		Agent: c.Name, Target: t, Base: base, Path: escaped, Query: query,
		Token: func(ctx context.Context) (proxy.Token, error) {
			return p.tokens.Get(ctx, key, func(ctx context.Context) (proxy.Token, error) {
				return proxyToken(p.svc.broker.Token(ctx, id, c.Name))
			})
		},
		Refresh: func(ctx context.Context, stale secret.String) (proxy.Token, error) {
			return p.tokens.Refresh(ctx, key, stale, func(ctx context.Context) (proxy.Token, error) {
				start := p.now()
				tok, err := p.svc.broker.Refresh(ctx, id, c.Name)
				p.svc.metrics.refreshed(refreshResult(err), p.now().Sub(start))
				return proxyToken(tok, err)
			})
		},
		Drop: func() { p.tokens.Drop(key) },
	}
	return p.fwd.Serve(w, r, call)
}

// auditProxy records a finished call made over gRPC.
func (g *Gateway) auditProxy(ctx context.Context, rec proxy.Record, id string, err error) {
	status := rec.Status
	if err != nil {
		status = http.StatusInternalServerError
		if e, ok := httpapi.As(err); ok {
			status = e.Status
		}
	}
	g.observeProxy(ctx, rec, id, status)
}

// observeProxy counts a call, logs it and queues its audit record for the
// broker: who, which connection, where, how it went. No query, header,
// body or token.
func (g *Gateway) observeProxy(ctx context.Context, rec proxy.Record, id string, status int) {
	g.proxy.metrics.observe(rec.Provider, status, rec.Elapsed)
	attrs := append(rec.LogAttrs(), slog.String("connection_id", id), slog.Int("answered", status))
	g.log.LogAttrs(ctx, slog.LevelInfo, "proxy call", attrs...)
	g.proxy.audit.Add(proxyaudit.Event{
		Time: g.now().Add(-rec.Elapsed).UTC(), Agent: rec.Agent, ConnectionID: id, Provider: rec.Provider,
		Method: rec.Method, Host: rec.Host, Path: rec.Path, Status: status,
		BytesIn: rec.BytesIn, BytesOut: rec.BytesOut, DurationUS: rec.Elapsed.Microseconds(), Retried: rec.Retried,
	}.Clipped())
}

// proxyBases is GET /v1/proxy-bases/{connection_id}: the API bases the
// proxy sends the connection's requests to, in index order, so that a
// client (the SDK's proxy mode) can map a provider URL onto the proxy
// route.
func (g *Gateway) proxyBases(w http.ResponseWriter, r *http.Request, c Caller) {
	id := r.PathValue("connection_id")
	if err := checkConnectionID(id); err != nil {
		g.writeError(w, r, err)
		return
	}
	t, err := g.proxy.target(r.Context(), c, id)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"provider": t.Provider, "api_base_urls": t.Bases()})
}

// splitBase takes the proxy's own base=N parameter out of a raw query and
// returns the rest exactly as sent.
func splitBase(raw string) (base, rest string) {
	if raw == "" {
		return "", ""
	}
	var kept []string
	for _, part := range strings.Split(raw, "&") {
		if v, ok := strings.CutPrefix(part, "base="); ok {
			base = v
			continue
		}
		kept = append(kept, part)
	}
	return base, strings.Join(kept, "&")
}

// proxyMetrics are the proxy's series, by provider name (a bounded set:
// the registered providers) and status class.
type proxyMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// auditDropped counts audit records the broker never received.
	auditDropped *prometheus.CounterVec
	// series caches the children used on every call.
	series httpapi.SeriesCache[proxyLabels, seriesPair]
}

type proxyLabels struct{ provider, class string }

func newProxyMetrics(reg prometheus.Registerer) (*proxyMetrics, error) {
	m := &proxyMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_proxy_requests_total",
			Help: "Calls through the API proxy, by provider and status class of the answer the agent received.",
		}, []string{"provider", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_proxy_request_duration_seconds",
			Help:    "Time of a call through the API proxy, bodies included, by provider.",
			Buckets: prometheus.DefBuckets,
		}, []string{"provider"}),
		auditDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_proxy_audit_dropped_total",
			Help: "Audit records of proxied calls that never reached the broker, by reason: queue_full, refused, shutdown.",
		}, []string{"reason"}),
	}
	m.series.New = func(l proxyLabels) seriesPair {
		return seriesPair{m.calls.WithLabelValues(l.provider, l.class), m.duration.WithLabelValues(l.provider)}
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.auditDropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("proxy metrics: %w", err)
		}
	}
	return m, nil
}

func (m *proxyMetrics) observe(provider string, status int, elapsed time.Duration) {
	if provider == "" {
		provider = "none" // refused before the provider was known
	}
	sp := m.series.Get(proxyLabels{provider, proxy.StatusClass(status)})
	sp.count.Inc()
	sp.duration.Observe(elapsed.Seconds())
}
