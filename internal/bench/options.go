package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Backends and parts a run may select.
const (
	BackendPostgres = "postgres"
	BackendSQLite   = "sqlite"

	PartToken     = "token"     // GET /v1/token through the gateway
	PartReference = "reference" // the same load against the reference server
	PartRequest   = "request"   // POST /v1/request-connection
	PartStorm     = "storm"     // concurrent reads of one expired token
	// PartBroker reads tokens from the broker directly, without the
	// gateway: not run by default, it tells the gateway's share apart.
	PartBroker = "broker"
	// PartServe reads tokens through `dromos serve`: broker and gateway in
	// one process, on the same database as the split pair.
	PartServe = "serve"
	// PartTwoHop is the reference behind two plain reverse proxies
	// (httputil.ReverseProxy processes): the transport-only ceiling of
	// the split design, gateway → broker → answer.
	PartTwoHop = "twohop"
	// PartScale seeds a PostgreSQL database with ScaleRows connections and
	// measures the background work and token reads of two broker replicas
	// on it beside a database of 100; not run by default (minutes).
	PartScale = "scale"
)

// PostgresEnv names the variable holding the PostgreSQL database the
// benchmark creates its scratch schema in.
const PostgresEnv = "DROMOS_BENCH_POSTGRES_URL"

// DefaultPostgresURL is used when PostgresEnv is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Command is a program to start: the reference server is one, so that the
// caller decides which binary serves it (dromos-bench itself, or a test
// binary re-executing itself).
type Command struct {
	Path string
	Args []string
	Env  []string
}

// Options say what a run measures and how long.
type Options struct {
	Warmup   time.Duration // per point, not measured
	Duration time.Duration // per point, measured
	// TokenConcurrency lists the concurrency levels of the token reads.
	TokenConcurrency []int
	// RequestConcurrency is the concurrency of the request-connection load.
	RequestConcurrency int
	// StormSize is how many reads of the expired token run at once.
	StormSize int
	// Connections is how many active connections the token reads cycle
	// through.
	Connections int
	// RefreshLatency delays the fake provider's refresh answers, so that the
	// storm's readers really overlap the one refresh.
	RefreshLatency time.Duration
	Backends       []string
	Parts          []string
	// PostgresURL is the database the PostgreSQL pair gets a scratch schema
	// in. It may hold a password: it is never printed.
	PostgresURL string
	// DromosBinary, when set, is used instead of building ./cmd/dromos.
	DromosBinary string
	// Reference starts the reference server; it must log a JSON line
	// {"msg":"listening","server":"reference","addr":…} on stderr. Started
	// with ProxyEnv set to a URL in its environment, it must serve
	// ServeProxy to that URL instead (server "proxy").
	Reference Command
	// ReverseProxy starts the plain reverse proxy of the proxy part, with
	// the upstream URL appended to its Args; it must log a JSON line
	// {"msg":"listening","server":"reverse-proxy","addr":…} on stderr.
	ReverseProxy Command
	// KeepLogs keeps the work folder with every process's log.
	KeepLogs bool

	// The scale part: ScaleRows connections of which ScaleHotPercent are
	// read, ScaleReadRate reads a second, for ScaleWarmup then
	// ScaleDuration; then ScaleRounds closed-loop points (Warmup, Duration)
	// at ScaleConcurrency on each database.
	ScaleRows        int
	ScaleHotPercent  float64
	ScaleReadRate    float64
	ScaleWarmup      time.Duration
	ScaleDuration    time.Duration
	ScaleConcurrency int
	ScaleRounds      int
}

// Deps are what a run takes from its surroundings.
type Deps struct {
	// Now is the clock latencies are measured with.
	Now func() time.Time
	// Rand supplies keys and schema names.
	Rand io.Reader
	// Log receives progress lines; the report goes elsewhere.
	Log *slog.Logger
}

// DefaultOptions are what `make bench` runs: about two and a half minutes
// on a 2-core machine.
func DefaultOptions() Options {
	return Options{
		Warmup:             2 * time.Second,
		Duration:           10 * time.Second,
		TokenConcurrency:   []int{1, 16, 64},
		RequestConcurrency: 16,
		StormSize:          300,
		Connections:        100,
		RefreshLatency:     50 * time.Millisecond,
		Backends:           []string{BackendPostgres, BackendSQLite},
		Parts:              []string{PartToken, PartServe, PartReference, PartTwoHop, PartRequest, PartStorm, PartProxy},
		PostgresURL:        DefaultPostgresURL,
		ScaleRows:          200_000,
		ScaleHotPercent:    1,
		ScaleReadRate:      20,
		ScaleWarmup:        40 * time.Second,
		ScaleDuration:      3 * time.Minute,
		ScaleConcurrency:   16,
		ScaleRounds:        2,
	}
}

func (o Options) has(part string) bool { return slices.Contains(o.Parts, part) }
func (o Options) maxTokenConcurrency() int {
	return slices.Max(append([]int{0}, o.TokenConcurrency...))
}

// Validate reports every problem at once.
func (o Options) Validate() error {
	var errs []error
	if o.Duration <= 0 || o.Warmup < 0 {
		errs = append(errs, errors.New("duration must be positive and warm-up not negative"))
	}
	if len(o.TokenConcurrency) == 0 && (o.has(PartToken) || o.has(PartReference) || o.has(PartBroker) || o.has(PartServe) || o.has(PartTwoHop) || o.has(PartProxy)) {
		errs = append(errs, errors.New("token reads need at least one concurrency level"))
	}
	for _, c := range o.TokenConcurrency {
		if c < 1 || c > 4096 {
			errs = append(errs, fmt.Errorf("concurrency %d out of 1..4096", c))
		}
	}
	if o.RequestConcurrency < 1 || o.RequestConcurrency > 4096 {
		errs = append(errs, errors.New("request-connection concurrency out of 1..4096"))
	}
	if o.StormSize < 1 || o.StormSize > 4096 {
		errs = append(errs, errors.New("storm size out of 1..4096"))
	}
	if o.Connections < 1 || o.Connections > 10000 {
		errs = append(errs, errors.New("active connections out of 1..10000"))
	}
	if o.has(PartScale) {
		if o.ScaleRows < scaleSmallRows || o.ScaleRows > 5_000_000 {
			errs = append(errs, fmt.Errorf("scale rows out of %d..5000000", scaleSmallRows))
		}
		if o.ScaleHotPercent <= 0 || o.ScaleHotPercent > 100 {
			errs = append(errs, errors.New("scale hot set must be a percentage in (0, 100]"))
		}
		if o.ScaleReadRate <= 0 || o.ScaleReadRate > 10000 {
			errs = append(errs, errors.New("scale read rate out of (0, 10000] reads a second"))
		}
		if o.ScaleDuration <= 0 || o.ScaleWarmup < 0 {
			errs = append(errs, errors.New("scale duration must be positive and warm-up not negative"))
		}
		if o.ScaleConcurrency < 1 || o.ScaleConcurrency > 4096 || o.ScaleRounds < 1 || o.ScaleRounds > 100 {
			errs = append(errs, errors.New("scale concurrency out of 1..4096 or rounds out of 1..100"))
		}
	}
	for _, b := range o.Backends {
		if b != BackendPostgres && b != BackendSQLite {
			errs = append(errs, fmt.Errorf("unknown backend %q (postgres, sqlite)", b))
		}
	}
	for _, p := range o.Parts {
		if !slices.Contains([]string{PartToken, PartReference, PartRequest, PartStorm, PartBroker, PartServe, PartTwoHop, PartProxy, PartScale}, p) {
			errs = append(errs, fmt.Errorf("unknown part %q (token, serve, reference, twohop, request, storm, broker, proxy, scale)", p))
		}
	}
	return errors.Join(errs...)
}

// ParseArgs reads the flags of a run over DefaultOptions. getenv supplies
// PostgresEnv.
func ParseArgs(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	o := DefaultOptions()
	if u := getenv(PostgresEnv); u != "" {
		o.PostgresURL = u
	}
	fs := flag.NewFlagSet("dromos-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dromos-bench [flags]\n       dromos-bench reference   (the reference server; started by the benchmark)\n\n"+
			"Starts broker and gateway processes on PostgreSQL (%s, default %s)\n"+
			"and SQLite, loads them, and prints their figures beside a minimal reference server's.\n\nFlags:\n",
			PostgresEnv, DefaultPostgresURL)
		fs.PrintDefaults()
	}
	quick := fs.Bool("quick", false, "smoke test: 1 s per point, 200 ms warm-up; scale part: 2,000 rows, 20 s after a 20 s warm-up")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "measured time per point")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "unmeasured warm-up per point")
	conns := fs.String("conns", joinInts(o.TokenConcurrency), "concurrency levels (HTTP connections) of the token reads, comma-separated")
	fs.IntVar(&o.RequestConcurrency, "request-conns", o.RequestConcurrency, "concurrency of POST /v1/request-connection")
	fs.IntVar(&o.StormSize, "storm", o.StormSize, "concurrent reads of one expired token")
	fs.IntVar(&o.Connections, "active-connections", o.Connections, "active Dromos connections (consents) the token reads cycle through")
	fs.DurationVar(&o.RefreshLatency, "refresh-latency", o.RefreshLatency, "delay of the fake provider's refresh answers")
	backends := fs.String("backends", strings.Join(o.Backends, ","), "storage backends: postgres, sqlite")
	parts := fs.String("parts", strings.Join(o.Parts, ","), "what to run: token (split broker + gateway), serve (dromos serve), reference, twohop (reference behind two\nreverse proxies), request, storm, proxy (API proxy vs a plain ReverseProxy, at the highest -conns), broker (token reads without the gateway)\nand scale (-scale-rows connections on PostgreSQL, two replicas, about 6 minutes; not run by default)")
	fs.StringVar(&o.DromosBinary, "dromos", "", "use this dromos binary instead of building ./cmd/dromos")
	fs.BoolVar(&o.KeepLogs, "keep-logs", false, "keep the work folder with every process's log")
	fs.IntVar(&o.ScaleRows, "scale-rows", o.ScaleRows, "scale part: active connections seeded in the database")
	fs.Float64Var(&o.ScaleHotPercent, "scale-hot", o.ScaleHotPercent, "scale part: percentage of the connections read (the hot set)")
	fs.Float64Var(&o.ScaleReadRate, "scale-read-rate", o.ScaleReadRate, "scale part: steady token reads a second of the hot set")
	fs.DurationVar(&o.ScaleWarmup, "scale-warmup", o.ScaleWarmup, "scale part: time before the provider's calls are counted")
	fs.DurationVar(&o.ScaleDuration, "scale-duration", o.ScaleDuration, "scale part: time the provider's calls are counted")
	fs.IntVar(&o.ScaleConcurrency, "scale-conns", o.ScaleConcurrency, "scale part: concurrency of the closed-loop token reads on each database")
	fs.IntVar(&o.ScaleRounds, "scale-rounds", o.ScaleRounds, "scale part: closed-loop points on each database, alternating")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		durationSet, warmupSet := false, false
		fs.Visit(func(f *flag.Flag) {
			durationSet = durationSet || f.Name == "duration"
			warmupSet = warmupSet || f.Name == "warmup"
		})
		if !durationSet {
			o.Duration = time.Second
		}
		if !warmupSet {
			o.Warmup = 200 * time.Millisecond
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["scale-rows"] {
			o.ScaleRows = 2000
		}
		if !set["scale-duration"] {
			o.ScaleDuration = 20 * time.Second
		}
		if !set["scale-warmup"] {
			o.ScaleWarmup = 20 * time.Second
		}
	}
	var err error
	if o.TokenConcurrency, err = splitInts(*conns); err != nil {
		return Options{}, fmt.Errorf("-conns: %w", err)
	}
	o.Backends, o.Parts = splitList(*backends), splitList(*parts)
	return o, o.Validate()
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func splitInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
