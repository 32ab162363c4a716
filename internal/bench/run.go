package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Run performs the benchmark o describes and returns its report. Failing to
// set up (no go tool, a process that will not start) is an error; a missed
// target is not. PostgreSQL being unreachable only skips its backend, with
// a note.
func Run(ctx context.Context, o Options, d Deps) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if (o.has(PartReference) || o.has(PartTwoHop)) && o.Reference.Path == "" {
		return nil, errors.New("bench: the reference and twohop parts need Options.Reference")
	}
	if d.Now == nil || d.Rand == nil {
		return nil, errors.New("bench: Deps.Now and Deps.Rand are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	work, err := os.MkdirTemp("", "dromos-bench-")
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, d: d, work: work, rep: &Report{Facts: machineFacts(d.Now())}}
	r.rep.Facts.Warmup, r.rep.Facts.Duration = o.Warmup, o.Duration
	r.rep.Facts.Connections, r.rep.Facts.RefreshLatency = o.Connections, o.RefreshLatency
	r.rep.Facts.ReferenceBody = len(referenceBody())
	err = r.run(ctx)
	if err != nil || o.KeepLogs {
		d.Log.Info("process logs kept", "dir", work)
	} else {
		os.RemoveAll(work)
	}
	if err != nil {
		return nil, err
	}
	r.rep.evaluate(o.maxTokenConcurrency())
	return r.rep, nil
}

type runner struct {
	o    Options
	d    Deps
	work string
	rep  *Report
}

func (r *runner) run(ctx context.Context) error {
	if r.o.has(PartReference) || r.o.has(PartTwoHop) {
		if err := r.reference(ctx); err != nil {
			return fmt.Errorf("reference: %w", err)
		}
	}
	if r.o.has(PartProxy) && r.o.ReverseProxy.Path == "" {
		return errors.New("the proxy part needs Options.ReverseProxy")
	}
	perBackend := (r.o.has(PartToken) || r.o.has(PartRequest) || r.o.has(PartStorm) || r.o.has(PartBroker) || r.o.has(PartServe) || r.o.has(PartProxy)) &&
		len(r.o.Backends) > 0
	if perBackend || r.o.has(PartScale) {
		bin := r.o.DromosBinary
		if bin == "" {
			r.d.Log.Info("building dromos")
			var err error
			if bin, err = buildDromos(ctx, r.work); err != nil {
				return err
			}
		}
		keys, err := newSecrets(r.d.Rand)
		if err != nil {
			return err
		}
		prov := newFakeProvider(keys.clientSecret, r.o.RefreshLatency)
		defer prov.close()
		if r.o.has(PartProxy) {
			if err := r.plainProxy(ctx, prov); err != nil {
				return fmt.Errorf("plain reverse proxy: %w", err)
			}
		}
		for _, b := range r.o.Backends {
			if !perBackend {
				break
			}
			if err := r.backend(ctx, b, bin, keys, prov); err != nil {
				return fmt.Errorf("%s: %w", b, err)
			}
		}
		if r.o.has(PartScale) {
			if err := r.scale(ctx, bin, keys); err != nil {
				return err
			}
		}
	}
	return nil
}

// backend runs every selected part against a fresh broker and gateway on b.
func (r *runner) backend(ctx context.Context, b, bin string, keys secrets, prov *fakeProvider) error {
	dbURL := "sqlite:" + filepath.Join(r.work, "bench.db")
	if b == BackendPostgres {
		schema, err := createSchema(ctx, r.o.PostgresURL, r.d.Rand)
		if err != nil {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("PostgreSQL skipped: %v (set %s)", err, PostgresEnv))
			r.d.Log.Warn("PostgreSQL skipped", "err", err)
			return nil
		}
		defer func() {
			if err := schema.drop(context.WithoutCancel(ctx)); err != nil {
				r.d.Log.Warn("dropping the scratch schema failed", "schema", schema.name, "err", err)
			}
		}()
		dbURL, r.rep.Facts.PostgresVersion = schema.url, schema.version
	}
	r.d.Log.Info("starting broker and gateway", "backend", b)
	s, err := startStack(ctx, b, bin, dbURL, r.work, keys)
	if err != nil {
		return err
	}
	defer s.stop()
	r.d.Log.Info("broker and gateway ready", "backend", b, "broker_pid", s.broker.pid(), "gateway_pid", s.gateway.pid())
	if err := s.registerProvider(ctx, prov); err != nil {
		return err
	}
	r.d.Log.Info("connecting", "backend", b, "connections", r.o.Connections)
	if err := s.connectMany(ctx, r.o.Connections); err != nil {
		return err
	}
	r.rep.Facts.TokenBody = s.tokenBodySize
	pids := []int{s.broker.pid(), s.gateway.pid()}
	if r.o.has(PartToken) {
		reqs := s.tokenRequests("Bearer " + s.keys.agentKey)
		for _, c := range r.o.TokenConcurrency {
			r.d.Log.Info("GET /v1/token", "backend", b, "conns", c)
			p := r.point(ctx, PartToken, b, c, reqs, pids)
			p.BrokerRSS, p.GatewayRSS = p.rss[0], p.rss[1]
			p.BrokerCPU, p.GatewayCPU = p.cpu[0], p.cpu[1]
			r.rep.Points = append(r.rep.Points, p.Point)
		}
	}
	if r.o.has(PartBroker) {
		reqs := s.brokerTokenRequests()
		for _, c := range r.o.TokenConcurrency {
			r.d.Log.Info("broker GET /connections/{id}/token", "backend", b, "conns", c)
			p := r.point(ctx, PartBroker, b, c, reqs, pids)
			p.BrokerRSS, p.GatewayRSS = p.rss[0], p.rss[1]
			p.BrokerCPU, p.GatewayCPU = p.cpu[0], p.cpu[1]
			r.rep.Points = append(r.rep.Points, p.Point)
		}
	}
	if r.o.has(PartProxy) {
		c := r.o.maxTokenConcurrency()
		r.d.Log.Info("GET /v1/proxy/{id}/small", "backend", b, "conns", c)
		p := r.point(ctx, PartProxy, b, c, s.proxyRequests(), pids)
		p.BrokerRSS, p.GatewayRSS = p.rss[0], p.rss[1]
		p.BrokerCPU, p.GatewayCPU = p.cpu[0], p.cpu[1]
		r.rep.Points = append(r.rep.Points, p.Point)
	}
	if r.o.has(PartServe) {
		if err := r.serve(ctx, b, bin, dbURL, keys, s); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if r.o.has(PartRequest) {
		r.d.Log.Info("POST /v1/request-connection", "backend", b, "conns", r.o.RequestConcurrency)
		p := r.point(ctx, PartRequest, b, r.o.RequestConcurrency, s.requestConnectionRequests(), pids)
		p.BrokerRSS, p.GatewayRSS = p.rss[0], p.rss[1]
		p.BrokerCPU, p.GatewayCPU = p.cpu[0], p.cpu[1]
		r.rep.Points = append(r.rep.Points, p.Point)
	}
	if r.o.has(PartStorm) {
		r.d.Log.Info("refresh storm", "backend", b, "readers", r.o.StormSize)
		st, err := s.storm(ctx, prov, r.o.StormSize, r.d.Now)
		if err != nil {
			return err
		}
		r.rep.Storms = append(r.rep.Storms, st)
	}
	return ctx.Err()
}

// serve runs the token reads through `dromos serve` on the split pair's
// database: the same connections, tokens and agent, one process.
func (r *runner) serve(ctx context.Context, b, bin, dbURL string, keys secrets, split *stack) error {
	p, gatewayURL, err := startServe(ctx, b, bin, dbURL, r.work, keys)
	if err != nil {
		return err
	}
	defer p.stop()
	r.d.Log.Info("dromos serve ready", "backend", b, "serve_pid", p.pid())
	reqs := split.tokenRequestsAt(gatewayURL, "Bearer "+keys.agentKey)
	for _, c := range r.o.TokenConcurrency {
		r.d.Log.Info("GET /v1/token (serve)", "backend", b, "conns", c)
		pt := r.point(ctx, PartServe, b, c, reqs, []int{p.pid()})
		pt.BrokerRSS, pt.BrokerCPU = pt.rss[0], pt.cpu[0]
		r.rep.Points = append(r.rep.Points, pt.Point)
	}
	return ctx.Err()
}

// reference runs the token load against the reference server process and,
// for the twohop part, against two reverse proxies chained in front of it.
func (r *runner) reference(ctx context.Context) error {
	p, err := startProcess(ctx, "reference", r.o.Reference, r.work, "reference")
	if err != nil {
		return err
	}
	defer p.stop()
	reqsTo := func(base string) requestFunc {
		u := base + "/v1/token/"
		return func(ctx context.Context, w, i int) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s%08d", u, (w*7919+i)%r.o.Connections), nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer reference")
			}
			return req, err
		}
	}
	if r.o.has(PartReference) {
		for _, c := range r.o.TokenConcurrency {
			r.d.Log.Info("GET /v1/token", "backend", referenceBackend, "conns", c)
			pt := r.point(ctx, PartReference, referenceBackend, c, reqsTo(p.url("reference")), []int{p.pid()})
			pt.ServerRSS, pt.ServerCPU = pt.rss[0], pt.cpu[0]
			r.rep.Points = append(r.rep.Points, pt.Point)
		}
	}
	if !r.o.has(PartTwoHop) {
		return ctx.Err()
	}
	// The broker's hop, then the gateway's, as agent → gateway → broker.
	target, pids := p.url("reference"), []int{p.pid()}
	for _, name := range []string{"proxy-broker", "proxy-gateway"} {
		c := r.o.Reference
		c.Env = append(append([]string(nil), c.Env...), ProxyEnv+"="+target)
		proxy, err := startProcess(ctx, name, c, r.work, "proxy")
		if err != nil {
			return err
		}
		defer proxy.stop()
		target, pids = proxy.url("proxy"), append(pids, proxy.pid())
	}
	for _, c := range r.o.TokenConcurrency {
		r.d.Log.Info("GET /v1/token via two proxies", "backend", referenceBackend, "conns", c)
		pt := r.point(ctx, PartTwoHop, referenceBackend, c, reqsTo(target), pids)
		pt.ServerRSS, pt.ServerCPU = pt.rss[0], pt.cpu[0]
		r.rep.Points = append(r.rep.Points, pt.Point)
	}
	return ctx.Err()
}

// measured is a Point with the peak RSS and the CPU time per measured
// request of each watched process.
type measured struct {
	Point
	rss []uint64
	cpu []time.Duration
}

// point runs one closed-loop load and reads the peak RSS and the CPU time
// of pids over it.
func (r *runner) point(ctx context.Context, part, backend string, conc int, reqs requestFunc, pids []int) measured {
	reset := true
	for _, pid := range pids {
		reset = resetPeakRSS(pid) && reset
	}
	cpuAt := func() []time.Duration {
		out := make([]time.Duration, len(pids))
		for i, pid := range pids {
			out[i], _ = cpuTime(pid) // unknown stays 0 and shows as "—"
		}
		return out
	}
	var cpuStart []time.Duration
	client := newClient(conc)
	defer client.CloseIdleConnections()
	s := runLoad(ctx, client, loadSpec{concurrency: conc, warmup: r.o.Warmup, duration: r.o.Duration, request: reqs, now: r.d.Now,
		atMeasureStart: func() { cpuStart = cpuAt() }})
	cpuEnd := cpuAt()
	m := measured{Point: Point{Part: part, Backend: backend, Concurrency: conc, Requests: s.requests(), Errors: s.errors,
		RPS: s.rps(), P50: s.percentile(50), P99: s.percentile(99), RSSSinceStart: !reset, FirstError: s.firstError}}
	for i, pid := range pids {
		v, err := peakRSS(pid)
		if err != nil {
			r.d.Log.Warn("peak RSS unknown", "pid", pid, "err", err)
		}
		m.rss = append(m.rss, v)
		var per time.Duration
		if cpuStart != nil && cpuStart[i] > 0 && s.requests() > 0 {
			per = (cpuEnd[i] - cpuStart[i]) / time.Duration(s.requests())
		}
		m.cpu = append(m.cpu, per)
		m.TotalCPU += per
	}
	return m
}

// machineFacts describes this machine for the report's header.
func machineFacts(now time.Time) Facts {
	f := Facts{Date: now, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUModel: "unknown CPU"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				f.CPUModel = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f1 := strings.Fields(string(b)); len(f1) > 0 {
			f.LoadAverage = f1[0]
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		f.Kernel = strings.TrimSpace(string(b))
	}
	return f
}

// Main is the dromos-bench command: it runs the benchmark and prints the
// report on stdout, or with "reference" as first argument serves the
// reference server (or with ProxyEnv set a reverse proxy) until ctx ends. It returns the exit code: 0 also when a
// target is missed, since the run is a measurement.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, self string, d Deps) int {
	if len(args) == 2 && args[0] == "reverse-proxy" {
		log := slog.New(slog.NewJSONHandler(stderr, nil))
		if err := ServeReverseProxy(ctx, "127.0.0.1:0", args[1], log); err != nil {
			fmt.Fprintf(stderr, "dromos-bench reverse-proxy: %v\n", err)
			return 1
		}
		return 0
	}
	if len(args) > 0 && args[0] == "reference" {
		log := slog.New(slog.NewJSONHandler(stderr, nil))
		if err := ServeRole(ctx, getenv, log); err != nil {
			fmt.Fprintf(stderr, "dromos-bench reference: %v\n", err)
			return 1
		}
		return 0
	}
	o, err := ParseArgs(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "dromos-bench: %v\n", err)
		return 2
	}
	o.Reference = Command{Path: self, Args: []string{"reference"}}
	o.ReverseProxy = Command{Path: self, Args: []string{"reverse-proxy"}}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	rep, err := Run(ctx, o, d)
	if err != nil {
		fmt.Fprintf(stderr, "dromos-bench: %v\n", err)
		return 1
	}
	if err := rep.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "dromos-bench: %v\n", err)
		return 1
	}
	return 0
}
