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
