package bench_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/bench"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

// asReference makes the test binary, started again with it set, serve the
// reference server instead of running tests, the way dromos-bench serves
// it from its own binary.
const asReference = "DROMOS_BENCH_TEST_AS_REFERENCE"

// asReverseProxy does the same for the plain reverse proxy; its upstream
// is the last argument.
const asReverseProxy = "DROMOS_BENCH_TEST_AS_REVERSE_PROXY"

func TestMain(m *testing.M) {
	if os.Getenv(asReference) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := bench.ServeRole(ctx, os.Getenv, slog.New(slog.NewJSONHandler(os.Stderr, nil))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(asReverseProxy) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := bench.ServeReverseProxy(ctx, "127.0.0.1:0", os.Args[len(os.Args)-1], slog.New(slog.NewJSONHandler(os.Stderr, nil))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunTiny runs the whole benchmark, every part, with tiny settings:
// real broker and gateway processes on SQLite (and PostgreSQL when
// DROMOS_TEST_POSTGRES_URL is set), the reference process, the storm.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	o := bench.DefaultOptions()
	o.Warmup, o.Duration = 200*time.Millisecond, 500*time.Millisecond
	o.TokenConcurrency = []int{1, 4}
	o.RequestConcurrency = 4
	o.StormSize = 50
	o.Connections = 5
	o.RefreshLatency = 20 * time.Millisecond
	o.Backends = []string{bench.BackendSQLite}
	if u := os.Getenv(storagetest.PostgresEnv); u != "" {
		o.Backends = append(o.Backends, bench.BackendPostgres)
		o.PostgresURL = u
	}
	o.Reference = bench.Command{Path: os.Args[0], Env: []string{asReference + "=1"}}
	o.ReverseProxy = bench.Command{Path: os.Args[0], Env: []string{asReverseProxy + "=1"}}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, o, bench.Deps{Now: time.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}

	// Per backend: token and serve at each level, request-connection once,
	// one proxy point; then reference and two-hop at each level and one
	// plain proxy point.
	if want := len(o.Backends)*(2*len(o.TokenConcurrency)+2) + 2*len(o.TokenConcurrency) + 1; len(rep.Points) != want {
		t.Errorf("%d points, want %d", len(rep.Points), want)
	}
	for _, p := range rep.Points {
		if p.Requests == 0 || p.Errors != 0 || p.RPS <= 0 || p.P99 < p.P50 || p.P50 <= 0 {
			t.Errorf("%s %s at %d: %d requests, %d errors (%s), %.0f req/s, p50 %s, p99 %s",
				p.Part, p.Backend, p.Concurrency, p.Requests, p.Errors, p.FirstError, p.RPS, p.P50, p.P99)
		}
		dromos := p.Part != bench.PartReference && p.Part != bench.PartTwoHop && p.Part != bench.PartPlainProxy
		if dromos && (p.BrokerRSS == 0 || (p.GatewayRSS == 0) != (p.Part == bench.PartServe)) {
			t.Errorf("%s %s at %d: RSS %d / %d", p.Part, p.Backend, p.Concurrency, p.BrokerRSS, p.GatewayRSS)
		}
		if p.TotalCPU < p.BrokerCPU || p.TotalCPU < p.ServerCPU {
			t.Errorf("%s %s at %d: CPU of all processes %s below one's", p.Part, p.Backend, p.Concurrency, p.TotalCPU)
		}
	}
	if len(rep.Storms) != len(o.Backends) {
		t.Fatalf("%d storms, want %d", len(rep.Storms), len(o.Backends))
	}
	for _, s := range rep.Storms {
		if s.ProviderRefreshes != 1 || s.Errors != 0 || s.Stale != 0 || s.Size != o.StormSize {
			t.Errorf("storm on %s: %d provider refreshes, %d errors (%s), %d stale answers of %d",
				s.Backend, s.ProviderRefreshes, s.Errors, s.FirstError, s.Stale, s.Size)
		}
	}

	var out strings.Builder
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	for _, want := range []string{"# Dromos benchmark", "| part ", "| GET /v1/token ", "| POST /v1/request-connection ",
		"| refresh storm (GET /v1/token) | sqlite ", "provider refreshes: 1;", "| reference ", "| issue ", "| target ",
		"exactly 1 provider refresh", "| GET /v1/token (dromos serve) ", "| GET /v1/token via 2 proxies ",
		"| CPU/req, all ", "of the two-hop ceiling", "| GET /v1/proxy/{id}/small ", "| GET /small (plain proxy) ",
		"proxied GET ≥ 60 % of a plain ReverseProxy"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// No secret of the run may reach the report.
	if strings.Contains(table, "rt-code") || strings.Contains(table, "at-0000") {
		t.Errorf("a token reached the report:\n%s", table)
	}
	t.Logf("\n%s", table)
}

// TestScaleTiny runs the scale part small on PostgreSQL: 2,000 seeded
// connections, 10 % of them hot, two replicas per database, a few seconds.
// It checks that the seeded rows are real ones (every read opens its sealed
// token) and that the providers saw exactly the refreshes the seeded layout
// calls for: the hot tokens that came into the refresh-ahead window, none
// of an idle connection, none with a read waiting.
func TestScaleTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	u := os.Getenv(storagetest.PostgresEnv)
	if u == "" {
		t.Skip("needs PostgreSQL: set " + storagetest.PostgresEnv)
	}
	o := bench.DefaultOptions()
	o.Parts, o.PostgresURL = []string{bench.PartScale}, u
	o.Warmup, o.Duration = 200*time.Millisecond, 500*time.Millisecond
	o.ScaleRows, o.ScaleHotPercent, o.ScaleReadRate = 2000, 10, 50
	o.ScaleWarmup, o.ScaleDuration = 3*time.Second, 3*time.Second
	o.ScaleConcurrency, o.ScaleRounds = 4, 1

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, o, bench.Deps{Now: time.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Scale
	if s == nil {
		t.Fatalf("no scale result; notes: %v", rep.Notes)
	}
	if s.Rows != 2000 || s.Hot != 200 {
		t.Errorf("%d rows, %d hot; want 2000 and 200", s.Rows, s.Hot)
	}
	if s.Steady.Requests == 0 || s.Steady.Errors != 0 {
		t.Errorf("steady reads: %d, %d errors (%s)", s.Steady.Requests, s.Steady.Errors, s.Steady.FirstError)
	}
	for _, p := range append(append([]bench.Point(nil), s.Big...), s.Small...) {
		if p.Requests == 0 || p.Errors != 0 || p.P99 < p.P50 {
			t.Errorf("closed loop on %s: %d requests, %d errors (%s), p50 %s, p99 %s", p.Backend, p.Requests, p.Errors, p.FirstError, p.P50, p.P99)
		}
	}
	w := s.Whole
	// Every hot token in the refresh-ahead window by the seed's end is
	// refreshed once (the second replica's first pass comes after it),
	// none beyond the end; by a read only those already within the read
	// margin when the reads began, before a pass could.
	if hot := w.HotAhead + w.OnRead; hot < s.DueBySeed || hot > s.DueByEnd || s.DueBySeed == 0 {
		t.Errorf("provider saw %d refreshes of hot tokens (%d on read), want %d..%d", hot, w.OnRead, s.DueBySeed, s.DueByEnd)
	}
	if w.OnRead > s.ReadDueBySeed {
		t.Errorf("provider saw %d refreshes with a read waiting, want at most %d", w.OnRead, s.ReadDueBySeed)
	}
	if w.Cold != s.KeepAliveDueByEnd || w.Unexpected != 0 {
		t.Errorf("provider saw %d refreshes of idle connections (want %d), %d of unknown tokens (want none)",
			w.Cold, s.KeepAliveDueByEnd, w.Unexpected)
	}
	if s.ConnectionsBytes <= s.SmallConnectionsBytes || s.TokensBytes <= s.SmallTokensBytes || s.BrokerRSS == 0 {
		t.Errorf("sizes: connections %d vs %d, tokens %d vs %d, RSS %d", s.ConnectionsBytes, s.SmallConnectionsBytes,
			s.TokensBytes, s.SmallTokensBytes, s.BrokerRSS)
	}
	var out strings.Builder
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Scale: 2000 connections, 200 hot", "| ahead (hot, no read waiting) ", "refresh-ahead DB time per minute",
		"| issue 21 ", "background provider calls within 10 %"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "rt-seed") || strings.Contains(out.String(), "at-seed") {
		t.Errorf("a token reached the report:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}
