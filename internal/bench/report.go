package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// The targets of issue "P5 · Proof under load".
const (
	targetShare = 0.25                 // of the reference's requests/s
	targetP99   = 5 * time.Millisecond // token read p99
	targetRSS   = 64 << 20             // bytes, broker and gateway each
)

// The targets of issue 22 (one process or many).
const (
	targetServeShare  = 0.25 // dromos serve, of the reference's requests/s
	targetSplitShare  = 0.60 // broker + gateway, of the two-proxy ceiling's
	targetServeIssue  = "issue 22"
	targetP5Issue     = "P5"
	targetProxyIssue  = "issue 17"
	twoHopDescription = "two httputil.ReverseProxy hops in front of the reference"
)

// Target results.
const (
	Met         = "met"
	Missed      = "MISSED"
	NotMeasured = "not measured"
)

// Facts describe the machine and the run.
type Facts struct {
	Date                     time.Time
	CPUs, GOMAXPROCS         int
	CPUModel, OS, Kernel     string
	GoVersion                string
	LoadAverage              string // of the minute before the run
	PostgresVersion          string
	Warmup, Duration         time.Duration
	Connections              int
	RefreshLatency           time.Duration
	TokenBody, ReferenceBody int // bytes of one answer
}

// Point is one measured load.
type Point struct {
	Part        string // PartToken, PartServe, PartReference, PartTwoHop, PartRequest or PartBroker
	Backend     string // BackendPostgres, BackendSQLite or "reference"
	Concurrency int
	Requests    int
	Errors      int
	RPS         float64
	P50, P99    time.Duration
	// Peak resident set sizes during the point, in bytes; 0 when not
	// applicable or unknown. ServerRSS is the reference server's.
	BrokerRSS, GatewayRSS, ServerRSS uint64
	// CPU time (user + system) each process spent per measured request;
	// 0 when unknown. Unlike requests/s, it hardly depends on what else
	// the machine is doing.
	BrokerCPU, GatewayCPU, ServerCPU time.Duration
	// TotalCPU is the CPU time per measured request of every process
	// serving the load together: broker and gateway, the one serve
	// process, the reference (with its proxies for the two-hop part).
	TotalCPU time.Duration
	// RSSSinceStart is set when the peak could not be reset before the
	// point, so the figure is the peak since the process started.
	RSSSinceStart bool
	FirstError    string
}

// Target is one goal of the issue and whether this run met it.
type Target struct {
	Issue, Name, Measured, Result string
}

// Report is everything a run measured.
type Report struct {
	Facts   Facts
	Points  []Point
	Storms  []Storm
	Targets []Target
	Notes   []string
	// Scale is the scale part's result, when it ran.
	Scale *Scale
}

const referenceBackend = "reference"

func (r *Report) find(part, backend string, conc int) (Point, bool) {
	for _, p := range r.Points {
		if p.Part == part && p.Backend == backend && p.Concurrency == conc {
			return p, true
		}
	}
	return Point{}, false
}

// evaluate fills in Targets, judged at the highest token concurrency (64
// by default) on PostgreSQL, the production backend.
func (r *Report) evaluate(level int) {
	at := fmt.Sprintf(" at %d conns", level)
	pg, havePG := r.find(PartToken, BackendPostgres, level)
	ref, haveRef := r.find(PartReference, referenceBackend, level)
	judge := func(name string, measured bool, value string, ok bool) {
		t := Target{Name: name, Measured: "—", Result: NotMeasured}
		if measured {
			t.Measured, t.Result = value, Missed
			if ok {
				t.Result = Met
			}
		}
		r.Targets = append(r.Targets, t)
	}
	share := 0.0
	if havePG && haveRef && ref.RPS > 0 {
		share = pg.RPS / ref.RPS
	}
	judge("token GET via gateway on PostgreSQL ≥ 25 % of reference req/s"+at, havePG && haveRef,
		fmt.Sprintf("%.1f %% (%.0f of %.0f req/s)", 100*share, pg.RPS, ref.RPS), share >= targetShare && pg.Errors == 0)
	judge("token GET p99 ≤ 5 ms on PostgreSQL"+at, havePG, fmtDur(pg.P99), pg.P99 <= targetP99 && pg.Errors == 0)
	judge("broker peak RSS < 64 MiB on PostgreSQL"+at, havePG && pg.BrokerRSS > 0, fmtRSS(pg.BrokerRSS), pg.BrokerRSS < targetRSS)
	judge("gateway peak RSS < 64 MiB on PostgreSQL"+at, havePG && pg.GatewayRSS > 0, fmtRSS(pg.GatewayRSS), pg.GatewayRSS < targetRSS)
	for _, s := range r.Storms {
		judge("refresh storm on "+s.Backend+": exactly 1 provider refresh, every reader served the new token", true,
			fmt.Sprintf("%d refresh(es), %d errors, %d stale", s.ProviderRefreshes, s.Errors, s.Stale),
			s.ProviderRefreshes == 1 && s.Errors == 0 && s.Stale == 0)
	}
	errs := 0
	for _, p := range r.Points {
		errs += p.Errors
	}
	judge("no failed request in any point", len(r.Points) > 0, fmt.Sprintf("%d errors", errs), errs == 0)
	for i := range r.Targets {
		r.Targets[i].Issue = targetP5Issue
	}
	r.evaluateDeployments(level)
	if t, ok := r.evaluateProxy(level); ok {
		t.Issue = targetProxyIssue
		r.Targets = append(r.Targets, t)
	}
	r.evaluateScale()
}

// evaluateDeployments judges the targets of issue 22 at concurrency level
// on PostgreSQL: dromos serve against the reference, the split pair against
// two plain proxy hops, and the CPU a token read costs Dromos in each.
func (r *Report) evaluateDeployments(level int) {
	at := fmt.Sprintf(" at %d conns", level)
	split, haveSplit := r.find(PartToken, BackendPostgres, level)
	srv, haveServe := r.find(PartServe, BackendPostgres, level)
	ref, haveRef := r.find(PartReference, referenceBackend, level)
	hops, haveHops := r.find(PartTwoHop, referenceBackend, level)
	judge := func(name string, measured bool, value string, ok bool) {
		t := Target{Issue: targetServeIssue, Name: name, Measured: "—", Result: NotMeasured}
		if measured {
			t.Measured, t.Result = value, Missed
			if ok {
				t.Result = Met
			}
		}
		r.Targets = append(r.Targets, t)
	}
	ratio := func(a, b float64) float64 {
		if b <= 0 {
			return 0
		}
		return a / b
	}
	s := ratio(srv.RPS, ref.RPS)
	judge("token GET via dromos serve on PostgreSQL ≥ 25 % of reference req/s"+at, haveServe && haveRef,
		fmt.Sprintf("%.1f %% (%.0f of %.0f req/s)", 100*s, srv.RPS, ref.RPS), s >= targetServeShare && srv.Errors == 0)
	h := ratio(split.RPS, hops.RPS)
	judge("token GET via broker + gateway on PostgreSQL ≥ 60 % of the two-hop ceiling's req/s"+at, haveSplit && haveHops,
		fmt.Sprintf("%.1f %% (%.0f of %.0f req/s)", 100*h, split.RPS, hops.RPS), h >= targetSplitShare && split.Errors == 0)
	judge("CPU per token read of all Dromos processes on PostgreSQL"+at+": dromos serve below broker + gateway",
		haveServe && haveSplit && srv.TotalCPU > 0 && split.TotalCPU > 0,
		fmt.Sprintf("serve %s, broker + gateway %s", fmtCPU(srv.TotalCPU), fmtCPU(split.TotalCPU)), srv.TotalCPU < split.TotalCPU)
}

// Write prints the report: facts, one table of figures, the targets.
func (r *Report) Write(w io.Writer) error {
	f := r.Facts
	var b strings.Builder
	fmt.Fprintf(&b, "# Dromos benchmark, %s\n\n", f.Date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "machine: %d CPUs (GOMAXPROCS %d) %s, %s, kernel %s; %s; PostgreSQL %s; load average before the run %s\n",
		f.CPUs, f.GOMAXPROCS, f.CPUModel, f.OS, orDash(f.Kernel), f.GoVersion, orDash(f.PostgresVersion), orDash(f.LoadAverage))
	if len(r.Points) > 0 || len(r.Storms) > 0 {
		fmt.Fprintf(&b, "load: closed loop, %s measured after %s warm-up per point, %d active connections, "+
			"token answer %d B (reference %d B), provider refresh latency %s; load generator, fake provider and all servers share the machine\n\n",
			f.Duration, f.Warmup, f.Connections, f.TokenBody, f.ReferenceBody, f.RefreshLatency)
	}

	rows := [][]string{{"part", "backend", "conns", "req/s", "p50", "p99", "errors", "broker RSS", "gateway RSS",
		"broker CPU/req", "gateway CPU/req", "CPU/req, all", "vs reference", "notes"}}
	align := []bool{false, false, true, true, true, true, true, true, true, true, true, true, true, false}
	for _, p := range r.Points {
		name := map[string]string{PartToken: "GET /v1/token", PartReference: "GET /v1/token",
			PartRequest: "POST /v1/request-connection", PartBroker: "broker GET /connections/{id}/token",
			PartProxy: "GET /v1/proxy/{id}/small", PartPlainProxy: "GET /small (plain proxy)",
			PartServe: "GET /v1/token (dromos serve)", PartTwoHop: "GET /v1/token via 2 proxies"}[p.Part]
		broker, gateway := fmtRSS(p.BrokerRSS), fmtRSS(p.GatewayRSS)
		brokerCPU, gatewayCPU := fmtCPU(p.BrokerCPU), fmtCPU(p.GatewayCPU)
		var notes []string
		switch p.Part {
		case PartReference, PartPlainProxy:
			broker, gateway = "—", fmtRSS(p.ServerRSS)+" (server)"
			brokerCPU, gatewayCPU = "—", fmtCPU(p.ServerCPU)+" (server)"
		case PartTwoHop:
			broker, gateway = "—", fmtRSS(p.ServerRSS)+" (server)"
			brokerCPU, gatewayCPU = "—", fmtCPU(p.ServerCPU)+" (server)"
			notes = append(notes, twoHopDescription+"; CPU/req, all: server and both proxies")
		case PartServe:
			broker, gateway = fmtRSS(p.BrokerRSS)+" (serve)", "—"
			brokerCPU, gatewayCPU = fmtCPU(p.BrokerCPU)+" (serve)", "—"
		}
		if p.RSSSinceStart {
			notes = append(notes, "RSS: peak since start")
		}
		if p.FirstError != "" {
			notes = append(notes, "first error: "+p.FirstError)
		}
		vs := "—"
		if ref, ok := r.find(PartReference, referenceBackend, p.Concurrency); ok && p.Part != PartReference && p.Part != PartRequest && ref.RPS > 0 {
			vs = fmt.Sprintf("%.1f %%", 100*p.RPS/ref.RPS)
		}
		if plain, ok := r.find(PartPlainProxy, plainProxyBackend, p.Concurrency); ok && p.Part == PartProxy && plain.RPS > 0 {
			vs = fmt.Sprintf("%.1f %% of plain proxy", 100*p.RPS/plain.RPS)
		}
		if hops, ok := r.find(PartTwoHop, referenceBackend, p.Concurrency); ok && p.Part == PartToken && hops.RPS > 0 {
			notes = append(notes, fmt.Sprintf("%.1f %% of the two-hop ceiling", 100*p.RPS/hops.RPS))
		}
		rows = append(rows, []string{name, p.Backend, fmt.Sprint(p.Concurrency), fmt.Sprintf("%.0f", p.RPS),
			fmtDur(p.P50), fmtDur(p.P99), fmt.Sprint(p.Errors), broker, gateway, brokerCPU, gatewayCPU, fmtCPU(p.TotalCPU), vs,
			strings.Join(notes, "; ")})
	}
	for _, s := range r.Storms {
		note := fmt.Sprintf("provider refreshes: %d; p99 of %d reads of a valid token: %s", s.ProviderRefreshes, s.Size, fmtDur(s.BaselineP99))
		if s.Stale > 0 {
			note += fmt.Sprintf("; %d stale answers", s.Stale)
		}
		if s.Preempted > 0 {
			note += fmt.Sprintf("; %d set-up(s) pre-empted by the refresh worker", s.Preempted)
		}
		if s.FirstError != "" {
			note += "; first error: " + s.FirstError
		}
		rows = append(rows, []string{"refresh storm (GET /v1/token)", s.Backend, fmt.Sprint(s.Size), "—",
			fmtDur(s.P50), fmtDur(s.P99), fmt.Sprint(s.Errors), "—", "—", "—", "—", "—", "—", note})
	}
	if len(rows) > 1 {
		writeTable(&b, rows, align)
	}
	if r.Scale != nil {
		r.Scale.write(&b)
	}

	b.WriteString("\n")
	trows := [][]string{{"issue", "target", "measured", "result"}}
	for _, t := range r.Targets {
		trows = append(trows, []string{t.Issue, t.Name, t.Measured, t.Result})
	}
	writeTable(&b, trows, []bool{false, false, false, false})
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTable writes a Markdown table whose columns are padded to one width,
// so it reads the same in a terminal and in a rendered document.
func writeTable(b *strings.Builder, rows [][]string, right []bool) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)), 3)
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if right[i] {
				fmt.Fprintf(b, "| %s%s ", pad, c)
			} else {
				fmt.Fprintf(b, "| %s%s ", c, pad)
			}
		}
		b.WriteString("|\n")
	}
	line(rows[0])
	for i := range width {
		if right[i] {
			fmt.Fprintf(b, "| %s: ", strings.Repeat("-", width[i]-1))
		} else {
			fmt.Fprintf(b, "| %s ", strings.Repeat("-", width[i]))
		}
	}
	b.WriteString("|\n")
	for _, row := range rows[1:] {
		line(row)
	}
}

func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "—"
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

func fmtRSS(b uint64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func fmtCPU(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
