package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
)

// scaleReplicas is how many broker processes share each scale database.
const scaleReplicas = 2

// scaleDB is one database of the scale part with its broker replicas.
type scaleDB struct {
	schema   *scratchSchema
	plan     seedPlan
	prov     *fakeProvider
	replicas []*process
	seeded   time.Time // when the seed was written
	seedTime time.Duration
}

func (d *scaleDB) stop() {
	for _, p := range d.replicas {
		p.stop()
	}
}

func (d *scaleDB) pids() []int {
	out := make([]int, len(d.replicas))
	for i, p := range d.replicas {
		out[i] = p.pid()
	}
	return out
}

// tokenURL is replica k's token read of connection i, as the gateway makes
// it.
func (d *scaleDB) tokenURL(k, i int) string {
	return d.replicas[k%len(d.replicas)].url("broker") + "/connections/" + d.plan.id(i) + "/token?client_name=" + agentName
}

// scaleBrokerEnv is a replica's environment: production settings, the
// defaults of every refresh and worker knob.
func scaleBrokerEnv(dbURL string, keys secrets) config.Env {
	return config.Env{
		// Token reads need no BASE_URL of their own: no consent runs here.
		"PORT": "0", "LISTEN_HOST": "127.0.0.1", "BASE_URL": "http://127.0.0.1",
		"DATABASE_URL":   dbURL,
		"ENCRYPTION_KEY": keys.encryptionKey, "STATE_KEY": keys.stateKey,
		"API_KEY": keys.brokerKey, "REQUIRE_API_KEY": "true", "LOG_LEVEL": "info",
	}
}

func envList(e config.Env) []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

// startScaleDB makes a scratch schema, starts the first replica (which
// migrates it), registers the bench provider through it, seeds rows with
// hot of them hot, and starts the other replica.
func (r *runner) startScaleDB(ctx context.Context, bin, label string, rows, hot int, keys secrets, prov *fakeProvider) (*scaleDB, error) {
	schema, err := createSchema(ctx, r.o.PostgresURL, r.d.Rand)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoPostgres, err)
	}
	r.rep.Facts.PostgresVersion = schema.version
	d := &scaleDB{schema: schema, prov: prov}
	env := scaleBrokerEnv(schema.url, keys)
	start := func(n int) error {
		p, err := startProcess(ctx, fmt.Sprintf("scale-%s-broker-%d", label, n), Command{Path: bin, Args: []string{"broker"}, Env: envList(env)}, r.work, "broker")
		if err != nil {
			return err
		}
		d.replicas = append(d.replicas, p)
		return waitOK(ctx, p.url("broker")+"/ready")
	}
	fail := func(err error) (*scaleDB, error) {
		d.stop()
		if derr := schema.drop(context.WithoutCancel(ctx)); derr != nil {
			r.d.Log.Warn("dropping the scratch schema failed", "schema", schema.name, "err", derr)
		}
		return nil, err
	}
	if err := start(1); err != nil {
		return fail(err)
	}
	if err := registerScaleProvider(ctx, d.replicas[0].url("broker"), keys, prov); err != nil {
		return fail(err)
	}
	cfg, err := config.LoadBroker(env)
	if err != nil {
		return fail(fmt.Errorf("reading the replicas' keys: %w", err))
	}
	var prefix [4]byte
	if _, err := io.ReadFull(r.d.Rand, prefix[:]); err != nil {
		return fail(err)
	}
	d.plan = seedPlan{rows: rows, hot: hot, prefix: fmt.Sprintf("%x", prefix[:])}
	if d.plan.providerID, err = lookupProviderID(ctx, schema.url); err != nil {
		return fail(fmt.Errorf("finding the provider: %w", err))
	}
	r.d.Log.Info("seeding", "database", label, "rows", rows, "hot", hot)
	d.plan.at = r.d.Now()
	if err := seed(ctx, schema.url, d.plan, cfg.EncryptionKeys); err != nil {
		return fail(err)
	}
	d.seeded = r.d.Now()
	d.seedTime = d.seeded.Sub(d.plan.at)
	for n := 2; n <= scaleReplicas; n++ {
		if err := start(n); err != nil {
			return fail(err)
		}
	}
	return d, nil
}

// drop stops the replicas and removes the schema.
func (r *runner) dropScaleDB(ctx context.Context, d *scaleDB) {
	d.stop()
	if err := d.schema.drop(context.WithoutCancel(ctx)); err != nil {
		r.d.Log.Warn("dropping the scratch schema failed", "schema", d.schema.name, "err", err)
	}
}

// registerScaleProvider registers the fake provider with one-hour tokens
// whose refresh tokens lapse after 90 idle days (Microsoft's), so the
// broker keeps idle grants alive.
func registerScaleProvider(ctx context.Context, brokerURL string, keys secrets, p *fakeProvider) error {
	api := &stack{client: newClient(1), keys: keys}
	defer api.client.CloseIdleConnections()
	profile := map[string]any{
		"name": providerName, "auth_url": p.authURL(), "token_url": p.tokenURL(),
		"client_id": fakeClientID, "client_secret": keys.clientSecret,
		"scopes": []string{"read", "write"}, "token_endpoint_auth_method": "client_secret_basic",
		"refresh_token_idle_lifetime_seconds": int64(seedIdleLifetime / time.Second),
	}
	st, err := api.call(ctx, http.MethodPost, brokerURL+"/providers", api.brokerHeader(), map[string]any{"profile": profile}, nil)
	if err != nil {
		return fmt.Errorf("registering the provider: %w", err)
	}
	if st != http.StatusCreated {
		return fmt.Errorf("registering the provider: HTTP %d", st)
	}
	return nil
}

// waitOK polls u until it answers 200, for up to 10 s.
func waitOK(ctx context.Context, u string) error {
	probe := &stack{client: newClient(1)}
	defer probe.client.CloseIdleConnections()
	for try := 0; ; try++ {
		st, err := probe.call(ctx, http.MethodGet, u, nil, nil, nil)
		if err == nil && st == http.StatusOK {
			return nil
		}
		if try == 100 {
			return fmt.Errorf("%s: status %d, %v", u, st, err)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// callLog is what the big database's fake provider saw: every refresh,
// when, of which seeded connection, and whether a read of that connection
// was waiting at the time (a read the broker refreshes on).
type callLog struct {
	mu      sync.Mutex
	calls   []providerCall
	reading []atomic.Int32 // per hot connection: reads in flight
	now     func() time.Time
}

type providerCall struct {
	at      time.Time
	index   int // seeded connection number; -1 for another token
	waiting bool
}

func (l *callLog) observe(refreshToken string) {
	i := seedIndex(refreshToken)
	waiting := i >= 0 && i < len(l.reading) && l.reading[i].Load() > 0
	at := l.now()
	l.mu.Lock()
	l.calls = append(l.calls, providerCall{at: at, index: i, waiting: waiting})
	l.mu.Unlock()
}

// callCounts are provider refreshes by what they were for.
type callCounts struct {
	Total      int
	OnRead     int // a read of the connection was waiting
	HotAhead   int // a hot connection, no read waiting: refresh ahead
	Cold       int // an idle connection: keep-alive
	Unexpected int // a token the seed did not make
}

func (l *callLog) count(from, to time.Time, hot int) callCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c callCounts
	for _, call := range l.calls {
		if call.at.Before(from) || !call.at.Before(to) {
			continue
		}
		c.Total++
		switch {
		case call.index < 0:
			c.Unexpected++
		case call.waiting:
			c.OnRead++
		case call.index < hot:
			c.HotAhead++
		default:
			c.Cold++
		}
	}
	return c
}

// steadyReads reads the hot set round robin at rate reads a second, over
// both replicas, from now until end; reads starting at or after
// measureFrom are measured. Each read marks its connection as being read
// for the call log.
func steadyReads(ctx context.Context, d *scaleDB, keys secrets, log *callLog, rate float64, measureFrom, end time.Time, now func() time.Time) sample {
	client := newClient(64)
	defer client.CloseIdleConnections()
	var (
		mu    sync.Mutex
		s     sample
		wg    sync.WaitGroup
		first string
	)
	every := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		if !now().Before(end) || ctx.Err() != nil {
			break
		}
		i := n % d.plan.hot
		u := d.tokenURL(n, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.reading[i].Add(1)
			t0 := now()
			failure := do(ctx, client, func(ctx context.Context, _, _ int) (*http.Request, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				if err == nil {
					req.Header.Set("X-API-Key", keys.brokerKey)
				}
				return req, err
			}, 0, 0)
			done := now()
			log.reading[i].Add(-1)
			if t0.Before(measureFrom) {
				return
			}
			mu.Lock()
			s.latencies = append(s.latencies, done.Sub(t0))
			if failure != "" {
				s.errors++
				if first == "" {
					first = failure
				}
			}
			mu.Unlock()
		}()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	wg.Wait()
	s.firstError = first
	s.elapsed = end.Sub(measureFrom)
	slices.Sort(s.latencies)
	return s
}

// metricsOf scrapes every replica's /metrics and sums the series.
func metricsOf(ctx context.Context, d *scaleDB, keys secrets) (promSamples, error) {
	client := newClient(1)
	defer client.CloseIdleConnections()
	total := promSamples{}
	for _, p := range d.replicas {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url("broker")+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-API-Key", keys.brokerKey)
		resp, err := client.Do(req)
		if err != nil {
			return nil, withoutURL(err)
		}
		m, err := parseProm(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
		}
		for k, v := range m {
			total[k] += v
		}
	}
	return total, nil
}

// scale runs the scale part (PostgreSQL only): a database of ScaleRows
// connections and one of scaleSmallRows, two broker replicas on each, the
// hot set read at a steady rate while the provider counts what the
// workers refresh, then closed-loop token reads on both databases.
func (r *runner) scale(ctx context.Context, bin string, keys secrets) error {
	o := r.o
	hot := max(1, int(float64(o.ScaleRows)*o.ScaleHotPercent/100+0.5))
	log := &callLog{reading: make([]atomic.Int32, hot), now: r.d.Now}
	bigProv := newFakeProvider(keys.clientSecret, o.RefreshLatency)
	defer bigProv.close()
	bigProv.observe = log.observe
	smallProv := newFakeProvider(keys.clientSecret, o.RefreshLatency)
	defer smallProv.close()

	r.d.Log.Info("scale: starting brokers", "rows", scaleSmallRows)
	small, err := r.startScaleDB(ctx, bin, "small", scaleSmallRows, scaleSmallRows, keys, smallProv)
	if errors.Is(err, errNoPostgres) {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("scale part skipped: %v (set %s)", err, PostgresEnv))
		r.d.Log.Warn("scale part skipped", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	defer r.dropScaleDB(ctx, small)
	r.d.Log.Info("scale: starting brokers", "rows", o.ScaleRows)
	big, err := r.startScaleDB(ctx, bin, "big", o.ScaleRows, hot, keys, bigProv)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	defer r.dropScaleDB(ctx, big)
	sc := &Scale{Rows: o.ScaleRows, Hot: hot, SmallRows: scaleSmallRows, Duration: o.ScaleDuration, Warmup: o.ScaleWarmup,
		ReadRate: o.ScaleReadRate, Concurrency: o.ScaleConcurrency, SeedTime: big.seedTime}
	r.rep.Scale = sc

	// The steady reads, the provider's count and the workers' metrics.
	begin := r.d.Now()
	measureFrom := begin.Add(o.ScaleWarmup)
	end := measureFrom.Add(o.ScaleDuration)
	r.d.Log.Info("scale: steady reads of the hot set", "hot", hot, "reads_per_second", o.ScaleReadRate,
		"warmup", o.ScaleWarmup, "duration", o.ScaleDuration)
	var before, smallBefore promSamples
	var metricsErr error
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		if !sleep(ctx, measureFrom.Sub(r.d.Now())) {
			return
		}
		var e1, e2 error
		before, e1 = metricsOf(ctx, big, keys)
		smallBefore, e2 = metricsOf(ctx, small, keys)
		metricsErr = errors.Join(e1, e2)
	}()
	steady := steadyReads(ctx, big, keys, log, o.ScaleReadRate, measureFrom, end, r.d.Now)
	<-scraped
	if err := ctx.Err(); err != nil {
		return err
	}
	after, e1 := metricsOf(ctx, big, keys)
	smallAfter, e2 := metricsOf(ctx, small, keys)
	if err := errors.Join(metricsErr, e1, e2); err != nil || before == nil {
		return fmt.Errorf("scale: reading the brokers' metrics: %v", err)
	}
	sc.Steady = steadyPoint(steady)
	sc.Window = log.count(measureFrom, end, hot)
	sc.Whole = log.count(time.Time{}, end, hot)
	sc.ExpectedAhead = big.plan.expectedAhead(measureFrom, end)
	sc.ExpectedKeepAlive = big.plan.expectedKeepAlive(measureFrom, end)
	sc.DueBySeed = big.plan.expectedAhead(time.Time{}, big.seeded)
	sc.ReadDueBySeed = big.plan.readDue(big.seeded)
	sc.DueByEnd = big.plan.expectedAhead(time.Time{}, end)
	sc.KeepAliveDueByEnd = big.plan.expectedKeepAlive(time.Time{}, end)
	sc.BrokerKinds = map[string]float64{}
	for _, kind := range []string{"on_read", "forced", "ahead", "keep_alive"} {
		sel := `kind="` + kind + `"`
		sc.BrokerKinds[kind] = after.sum("token_provider_calls_total", sel) - before.sum("token_provider_calls_total", sel)
	}
	sc.Deferred = after.sum("token_provider_calls_deferred_total", "") - before.sum("token_provider_calls_deferred_total", "")
	sec := func(a, b promSamples, name string) time.Duration {
		return time.Duration((a.sum(name, "") - b.sum(name, "")) * float64(time.Second))
	}
	sc.WorkerDB = sec(after, before, "token_refresh_ahead_db_seconds_total")
	sc.SmallWorkerDB = sec(smallAfter, smallBefore, "token_refresh_ahead_db_seconds_total")
	sc.ReadMarksDB = sec(after, before, "token_read_marks_db_seconds_total")
	sc.SmallReadMarksDB = sec(smallAfter, smallBefore, "token_read_marks_db_seconds_total")

	// Closed-loop reads, alternating databases so both see the same
	// machine.
	for round := 1; round <= o.ScaleRounds; round++ {
		for _, db := range []*scaleDB{small, big} {
			label := fmt.Sprintf("%d rows", db.plan.rows)
			r.d.Log.Info("scale: closed-loop token reads", "database", label, "round", round, "conns", o.ScaleConcurrency)
			n := db.plan.hot
			reqs := func(ctx context.Context, w, i int) (*http.Request, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, db.tokenURL(w, (w*7919+i)%n), nil)
				if err == nil {
					req.Header.Set("X-API-Key", keys.brokerKey)
				}
				return req, err
			}
			p := r.point(ctx, PartScale, label, o.ScaleConcurrency, reqs, db.pids())
			p.BrokerRSS = max(p.rss[0], p.rss[1])
			p.BrokerCPU = p.TotalCPU
			if db == big {
				sc.Big = append(sc.Big, p.Point)
			} else {
				sc.Small = append(sc.Small, p.Point)
			}
		}
	}
	for _, pid := range big.pids() {
		if v, err := peakRSS(pid); err == nil {
			sc.BrokerRSS = max(sc.BrokerRSS, v)
		}
	}
	for _, pid := range small.pids() {
		if v, err := peakRSS(pid); err == nil {
			sc.SmallBrokerRSS = max(sc.SmallBrokerRSS, v)
		}
	}
	if sc.ConnectionsBytes, sc.TokensBytes, err = tableSizes(ctx, big.schema.url); err != nil {
		return fmt.Errorf("scale: table sizes: %w", err)
	}
	if sc.SmallConnectionsBytes, sc.SmallTokensBytes, err = tableSizes(ctx, small.schema.url); err != nil {
		return fmt.Errorf("scale: table sizes: %w", err)
	}
	return ctx.Err()
}

func steadyPoint(s sample) Point {
	return Point{Part: PartScale, Requests: s.requests(), Errors: s.errors, RPS: s.rps(),
		P50: s.percentile(50), P99: s.percentile(99), FirstError: s.firstError}
}

// errNoPostgres: the scale part's database cannot be reached.
var errNoPostgres = errors.New("PostgreSQL unavailable")

// scaleSmallRows is the size of the comparison database: every row hot.
const scaleSmallRows = 100
