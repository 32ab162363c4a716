package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The targets of issue 21 (background work that grows with use).
const (
	targetScaleIssue = "issue 21"
	targetCallsSlack = 0.10 // background calls within 10 % of what the hot set needs
	targetScaleRPS   = 0.90 // req/s on the big database ≥ 90 % of the small one's
	targetScaleP99   = 1.20 // p99 on the big database ≤ 120 % of the small one's
)

// Scale is what the scale part measured.
type Scale struct {
	Rows, Hot, SmallRows int
	Warmup, Duration     time.Duration
	ReadRate             float64
	Concurrency          int
	SeedTime             time.Duration // writing the big database's rows
	// Steady is the steady reads of the hot set during the measured window.
	Steady Point
	// Window is the provider's refreshes during the measured window, by
	// what the provider could tell; Whole is the same from the start.
	Window, Whole callCounts
	// ExpectedAhead and ExpectedKeepAlive are the hot tokens entering the
	// refresh-ahead window and the idle grants reaching the keep-alive age
	// during the measured window, counted from the seeded rows.
	ExpectedAhead, ExpectedKeepAlive int
	// DueBySeed, DueByEnd: hot tokens in the refresh-ahead window when the
	// seed was written and when the run ended; KeepAliveDueByEnd likewise.
	DueBySeed, DueByEnd, KeepAliveDueByEnd int
	// ReadDueBySeed: hot tokens within the read margin when the seed was
	// written, which the first reads may refresh before a worker pass does.
	ReadDueBySeed int
	// BrokerKinds is the brokers' own count of provider calls by kind in
	// the window (token_provider_calls_total, both replicas); Deferred the
	// calls the budget put off.
	BrokerKinds map[string]float64
	Deferred    float64
	// Database time in the window, both replicas: the refresh-ahead
	// passes' queries and the read marks' writes, on each database.
	WorkerDB, SmallWorkerDB       time.Duration
	ReadMarksDB, SmallReadMarksDB time.Duration
	// Closed-loop token reads, one point per round on each database.
	Big, Small                              []Point
	BrokerRSS, SmallBrokerRSS               uint64 // peak of either replica since start
	ConnectionsBytes, TokensBytes           int64
	SmallConnectionsBytes, SmallTokensBytes int64
}

func (s *Scale) minutes() float64 { return s.Duration.Minutes() }

// background is the provider's background refreshes in the window.
func (s *Scale) background() int { return s.Window.HotAhead + s.Window.Cold }

// nominal is the background calls a minute the issue expects: hot ÷ 60
// for one-hour tokens, plus idle grants ÷ the keep-alive age in minutes.
func (s *Scale) nominal() (ahead, keepAlive float64) {
	return float64(s.Hot) / seedTokenLifetime.Minutes(), float64(s.Rows-s.Hot) / seedKeepAliveAfter.Minutes()
}

// mean is the mean req/s and p99 of points, and their errors.
func mean(ps []Point) (rps float64, p99 time.Duration, errs int) {
	if len(ps) == 0 {
		return 0, 0, 0
	}
	for _, p := range ps {
		rps += p.RPS
		p99 += p.P99
		errs += p.Errors
	}
	return rps / float64(len(ps)), p99 / time.Duration(len(ps)), errs
}

// meanCPU is the mean CPU per request of points.
func meanCPU(ps []Point) time.Duration {
	if len(ps) == 0 {
		return 0
	}
	var sum time.Duration
	for _, p := range ps {
		sum += p.TotalCPU
	}
	return sum / time.Duration(len(ps))
}

// evaluateScale adds issue 21's targets.
func (r *Report) evaluateScale() {
	s := r.Scale
	if s == nil {
		return
	}
	judge := func(name, value string, ok bool) {
		res := Missed
		if ok {
			res = Met
		}
		r.Targets = append(r.Targets, Target{Issue: targetScaleIssue, Name: name, Measured: value, Result: res})
	}
	ahead, keep := s.nominal()
	want := (ahead + keep) * s.minutes()
	got := float64(s.background())
	judge(fmt.Sprintf("background provider calls within 10 %% of the hot set's need + keep-alive (%d rows, %d hot)", s.Rows, s.Hot),
		fmt.Sprintf("%.1f/min vs %.1f/min expected (%.1f %% off)", got/s.minutes(), want/s.minutes(), 100*(got-want)/want),
		want > 0 && abs(got-want) <= targetCallsSlack*want && s.Window.Unexpected == 0)
	bigRPS, bigP99, bigErr := mean(s.Big)
	smallRPS, smallP99, smallErr := mean(s.Small)
	judge(fmt.Sprintf("token reads/s on %d rows ≥ 90 %% of %d rows", s.Rows, s.SmallRows),
		fmt.Sprintf("%.1f %% (%.0f of %.0f req/s)", 100*ratio(bigRPS, smallRPS), bigRPS, smallRPS),
		smallRPS > 0 && bigRPS >= targetScaleRPS*smallRPS && bigErr+smallErr == 0)
	judge(fmt.Sprintf("token read p99 on %d rows ≤ 120 %% of %d rows", s.Rows, s.SmallRows),
		fmt.Sprintf("%.1f %% (%s vs %s)", 100*ratio(float64(bigP99), float64(smallP99)), fmtDur(bigP99), fmtDur(smallP99)),
		smallP99 > 0 && float64(bigP99) <= targetScaleP99*float64(smallP99) && bigErr+smallErr == 0)
	judge("no failed steady read, no refresh an agent waited for",
		fmt.Sprintf("%d errors, %d on-read refreshes", s.Steady.Errors, s.Window.OnRead), s.Steady.Errors == 0 && s.Window.OnRead == 0)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// writeScale prints the scale part's figures.
func (s *Scale) write(b *strings.Builder) {
	mins := s.minutes()
	ahead, keep := s.nominal()
	fmt.Fprintf(b, "\n## Scale: %d connections, %d hot (%.1f %%), 2 broker replicas, PostgreSQL\n\n", s.Rows, s.Hot, 100*float64(s.Hot)/float64(s.Rows))
	fmt.Fprintf(b, "seeded with COPY in %s; hot set read at %.0f/s round robin through both replicas; %s measured after %s warm-up; "+
		"provider: one-hour tokens, refresh tokens lapse after 90 idle days (keep-alive after 60)\n\n",
		s.SeedTime.Round(time.Millisecond), s.ReadRate, s.Duration, s.Warmup)
	rows := [][]string{{"provider refresh calls", "measured", "per minute", "expected per minute", "notes"}}
	w := s.Window
	rows = append(rows,
		[]string{"ahead (hot, no read waiting)", strconv.Itoa(w.HotAhead), perMin(w.HotAhead, mins), fmt.Sprintf("%.1f", ahead),
			fmt.Sprintf("hot ÷ 60; %d from the seeded expiries", s.ExpectedAhead)},
		[]string{"keep-alive (idle)", strconv.Itoa(w.Cold), perMin(w.Cold, mins), fmt.Sprintf("%.1f", keep),
			fmt.Sprintf("idle ÷ 60 days; %d from the seeded refresh times", s.ExpectedKeepAlive)},
		[]string{"on read (a read waiting)", strconv.Itoa(w.OnRead), perMin(w.OnRead, mins), "0", ""},
		[]string{"background, total", strconv.Itoa(s.background()), perMin(s.background(), mins), fmt.Sprintf("%.1f", ahead+keep),
			fmt.Sprintf("refreshing every connection ahead: %.0f/min", float64(s.Rows)/seedTokenLifetime.Minutes())},
	)
	if w.Unexpected > 0 {
		rows = append(rows, []string{"unknown tokens", strconv.Itoa(w.Unexpected), perMin(w.Unexpected, mins), "0", ""})
	}
	k := s.BrokerKinds
	rows = append(rows, []string{"brokers' own count", fmt.Sprintf("%.0f", k["ahead"]+k["keep_alive"]+k["on_read"]+k["forced"]), "", "",
		fmt.Sprintf("token_provider_calls_total: ahead %.0f, keep_alive %.0f, on_read %.0f, forced %.0f; deferred %.0f",
			k["ahead"], k["keep_alive"], k["on_read"], k["forced"], s.Deferred)})
	writeTable(b, rows, []bool{false, true, true, true, false})

	b.WriteString("\n")
	bigRPS, bigP99, _ := mean(s.Big)
	smallRPS, smallP99, _ := mean(s.Small)
	rows = [][]string{{"", fmt.Sprintf("%d rows", s.Rows), fmt.Sprintf("%d rows", s.SmallRows), "notes"}}
	rows = append(rows,
		[]string{"refresh-ahead DB time per minute", fmtSecs(s.WorkerDB, mins), fmtSecs(s.SmallWorkerDB, mins),
			"token_refresh_ahead_db_seconds_total, both replicas: claim, reads, next-time writes, release"},
		[]string{"read-mark DB time per minute", fmtSecs(s.ReadMarksDB, mins), fmtSecs(s.SmallReadMarksDB, mins),
			"token_read_marks_db_seconds_total, both replicas (only the big database is read during the window)"},
		[]string{"steady reads p50 / p99", fmtDur(s.Steady.P50) + " / " + fmtDur(s.Steady.P99), "—",
			fmt.Sprintf("%d reads, %d errors", s.Steady.Requests, s.Steady.Errors)},
		[]string{fmt.Sprintf("closed-loop token reads, %d conns: req/s", s.Concurrency), fmt.Sprintf("%.0f", bigRPS), fmt.Sprintf("%.0f", smallRPS),
			"mean of " + roundsOf(s.Big) + " vs " + roundsOf(s.Small)},
		[]string{"closed-loop p99", fmtDur(bigP99), fmtDur(smallP99), "mean of the rounds' p99"},
		[]string{"closed-loop broker CPU per read", fmtCPU(meanCPU(s.Big)), fmtCPU(meanCPU(s.Small)),
			"both replicas, PostgreSQL's own excluded: less sensitive than req/s to what else the machine runs"},
		[]string{"broker peak RSS", fmtRSS(s.BrokerRSS), fmtRSS(s.SmallBrokerRSS), "the larger replica, since start"},
		[]string{"connections table on disk", fmtBytes(s.ConnectionsBytes), fmtBytes(s.SmallConnectionsBytes), "pg_total_relation_size (heap, TOAST, indexes)"},
		[]string{"tokens table on disk", fmtBytes(s.TokensBytes), fmtBytes(s.SmallTokensBytes), ""},
	)
	writeTable(b, rows, []bool{false, true, true, false})
}

func perMin(n int, min float64) string {
	if min <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", float64(n)/min)
}

func fmtSecs(d time.Duration, min float64) string {
	if min <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)/min)
}

func fmtBytes(n int64) string {
	if n <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func roundsOf(ps []Point) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%.0f", p.RPS)
	}
	return strings.Join(s, ", ")
}

// promSamples are Prometheus text-format samples: series (name with its
// labels) → value.
type promSamples map[string]float64

// sum adds the samples of metric name whose labels hold sel (e.g.
// `kind="ahead"`); an empty sel takes every series.
func (m promSamples) sum(name, sel string) float64 {
	total := 0.0
	for series, v := range m {
		n, labels, _ := strings.Cut(series, "{")
		if n == name && strings.Contains(labels, sel) {
			total += v
		}
	}
	return total
}

// parseProm reads the text exposition format (comments skipped).
func parseProm(r io.Reader) (promSamples, error) {
	out := promSamples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[line[:i]] += v
	}
	return out, sc.Err()
}
