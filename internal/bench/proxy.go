package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// Parts of the API proxy benchmark (issue 17).
const (
	// PartProxy is GET /v1/proxy/{id}/small through the gateway: the
	// provider's small API answer with the token injected by the gateway.
	PartProxy = "proxy"
	// PartPlainProxy is the same GET through a plain
	// net/http/httputil.ReverseProxy without authentication, in front of
	// the same upstream (it runs with PartProxy).
	PartPlainProxy = "plain-proxy"

	plainProxyBackend = "ReverseProxy"
	// targetProxyShare is the goal: the proxy keeps at least this
	// share of the plain reverse proxy's requests/s.
	targetProxyShare = 0.60
)

// smallAPIBody is the upstream's answer: a small JSON document, about what
// a "get one record" API call returns.
var smallAPIBody = []byte(`{"id":"0001","name":"bench record","updated":"2030-01-01T00:00:00Z","tags":["a","b"]}` + "\n")

// apiHandler is the fake provider's API: GET /api/small answers any
// request carrying a bearer token, so the plain proxy's load (which sends
// a fixed token, as an agent holding one would) and the Dromos proxy's
// (whose gateway injects the connection's) get the same answer.
func apiHandler(w http.ResponseWriter, r *http.Request) {
	if len(r.Header.Get("Authorization")) <= len("Bearer ") {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(smallAPIBody)
}

// ServeReverseProxy runs a plain httputil.ReverseProxy to upstream on addr
// until ctx ends, announcing its address like the other servers.
func ServeReverseProxy(ctx context.Context, addr, upstream string, log *slog.Logger) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("upstream %q is not an absolute URL", upstream)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
		},
	}
	return serve(ctx, addr, "reverse-proxy", rp, log)
}

// proxyRequests cycles the workers through the active connections'
// proxy routes.
func (s *stack) proxyRequests() requestFunc {
	urls := make([]string, len(s.conns))
	for i, id := range s.conns {
		urls[i] = s.gatewayURL + "/v1/proxy/" + id + "/small"
	}
	auth := "Bearer " + s.keys.agentKey
	return func(ctx context.Context, w, i int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[(w*7919+i)%len(urls)], nil)
		if err == nil {
			req.Header.Set("Authorization", auth)
		}
		return req, err
	}
}

// plainProxy runs the same load against a plain reverse proxy process in
// front of the fake provider's API.
func (r *runner) plainProxy(ctx context.Context, prov *fakeProvider) error {
	cmd := r.o.ReverseProxy
	cmd.Args = append(append([]string(nil), cmd.Args...), prov.srv.URL+"/api")
	p, err := startProcess(ctx, "reverse-proxy", cmd, r.work, "reverse-proxy")
	if err != nil {
		return err
	}
	defer p.stop()
	u := p.url("reverse-proxy") + "/small"
	reqs := func(ctx context.Context, _, _ int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer plain-proxy-token")
		}
		return req, err
	}
	c := r.o.maxTokenConcurrency()
	r.d.Log.Info("plain ReverseProxy GET /small", "conns", c)
	pt := r.point(ctx, PartPlainProxy, plainProxyBackend, c, reqs, []int{p.pid()})
	pt.ServerRSS, pt.ServerCPU = pt.rss[0], pt.cpu[0]
	r.rep.Points = append(r.rep.Points, pt.Point)
	return ctx.Err()
}

// evaluateProxy judges the proxy's target on PostgreSQL, or SQLite when
// PostgreSQL was not measured.
func (r *Report) evaluateProxy(level int) (Target, bool) {
	plain, ok := r.find(PartPlainProxy, plainProxyBackend, level)
	if !ok {
		return Target{}, false
	}
	p, have := r.find(PartProxy, BackendPostgres, level)
	if !have {
		p, have = r.find(PartProxy, BackendSQLite, level)
	}
	t := Target{Name: fmt.Sprintf("proxied GET ≥ 60 %% of a plain ReverseProxy's req/s at %d conns", level), Measured: "—", Result: NotMeasured}
	if have && plain.RPS > 0 {
		share := p.RPS / plain.RPS
		t.Measured = fmt.Sprintf("%.1f %% (%.0f of %.0f req/s, %s; p99 %s vs %s)", 100*share, p.RPS, plain.RPS, p.Backend, fmtDur(p.P99), fmtDur(plain.P99))
		t.Result = Missed
		if share >= targetProxyShare && p.Errors == 0 {
			t.Result = Met
		}
	}
	return t, true
}
