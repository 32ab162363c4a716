package bench

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseVmHWM(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         uint64
		ok           bool
	}{
		{"linux status", "Name:\tdromos\nVmPeak:\t 1300 kB\nVmHWM:\t   31744 kB\nVmRSS:\t 30000 kB\n", 31744 * 1024, true},
		{"no line", "Name:\tdromos\nVmRSS:\t 30000 kB\n", 0, false},
		{"other unit", "VmHWM:\t 31 MB\n", 0, false},
		{"not a number", "VmHWM:\t lots kB\n", 0, false},
		{"missing unit", "VmHWM:\t 31744\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmHWM(tc.status)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("got %d, %v; want %d, ok=%v", got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, errNoProcStatus) {
				t.Fatalf("error %v does not wrap errNoProcStatus", err)
			}
		})
	}
}

func TestParseCPUTime(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		ok         bool
	}{
		{"plain", "4242 (dromos) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0", 3800 * time.Millisecond, true},
		{"name with spaces and parens", "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0", 30 * time.Millisecond, true},
		{"no name", "4242 dromos S 1", 0, false},
		{"short", "4242 (dromos) S 1 2 3", 0, false},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 2 0", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUTime(tc.stat)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("got %s, %v; want %s, ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestPeakRSSOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	got, err := peakRSS(os.Getpid())
	if err != nil || got < 1<<20 {
		t.Fatalf("peak RSS of the test process: %d, %v", got, err)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, n := range v {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one sample", ms(7), 50, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of a hundred is the 99th", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of a hundred is the 50th", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100 is the maximum", ms(1, 2, 900), 100, 900 * time.Millisecond},
		{"p99 of ten is the maximum", ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 40), 99, 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Options) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(o Options) bool {
			return o.Duration == 10*time.Second && o.Warmup == 2*time.Second && slices.Equal(o.TokenConcurrency, []int{1, 16, 64}) &&
				o.StormSize == 300 && o.PostgresURL == DefaultPostgresURL && len(o.Parts) == 7 && slices.Contains(o.Parts, PartProxy) && len(o.Backends) == 2
		}, ""},
		{"quick", []string{"-quick"}, nil, func(o Options) bool {
			return o.Duration == time.Second && o.Warmup == 200*time.Millisecond
		}, ""},
		{"quick keeps an explicit duration", []string{"-quick", "-duration", "3s"}, nil, func(o Options) bool {
			return o.Duration == 3*time.Second && o.Warmup == 200*time.Millisecond
		}, ""},
		{"lists", []string{"-conns", "2, 8,8", "-backends", "sqlite", "-parts", "storm,token"}, nil, func(o Options) bool {
			return slices.Equal(o.TokenConcurrency, []int{2, 8}) && slices.Equal(o.Backends, []string{"sqlite"}) &&
				slices.Equal(o.Parts, []string{"storm", "token"})
		}, ""},
		{"postgres from the environment", nil, map[string]string{PostgresEnv: "postgres://db/x"}, func(o Options) bool {
			return o.PostgresURL == "postgres://db/x"
		}, ""},
		{"bad concurrency", []string{"-conns", "1,many"}, nil, nil, `"many" is not a number`},
		{"zero concurrency", []string{"-conns", "0"}, nil, nil, "concurrency 0 out of"},
		{"unknown part", []string{"-parts", "token,grpc"}, nil, nil, `unknown part "grpc"`},
		{"unknown backend", []string{"-backends", "mysql"}, nil, nil, `unknown backend "mysql"`},
		{"stray argument", []string{"now"}, nil, nil, "unexpected argument"},
		{"every problem at once", []string{"-storm", "0", "-duration", "0s"}, nil, nil, "storm size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseArgs(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("got %+v, %v", o, err)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	ref := Point{Part: PartReference, Backend: referenceBackend, Concurrency: 64, RPS: 10000}
	pg := func(rps float64, p99 time.Duration, rss uint64, errs int) Point {
		return Point{Part: PartToken, Backend: BackendPostgres, Concurrency: 64, RPS: rps, P99: p99,
			BrokerRSS: rss, GatewayRSS: rss, Errors: errs, Requests: 100}
	}
	withCPU := func(p Point, us int) Point { p.TotalCPU = time.Duration(us) * time.Microsecond; return p }
	serve := func(rps float64, us int) Point {
		return Point{Part: PartServe, Backend: BackendPostgres, Concurrency: 64, RPS: rps, BrokerRSS: 40 << 20,
			TotalCPU: time.Duration(us) * time.Microsecond, Requests: 100}
	}
	hops := func(rps float64) Point {
		return Point{Part: PartTwoHop, Backend: referenceBackend, Concurrency: 64, RPS: rps}
	}
	for _, tc := range []struct {
		name   string
		points []Point
		storms []Storm
		want   []string // results, in target order
	}{
		{"all met", []Point{ref, pg(3000, 4*time.Millisecond, 40<<20, 0)},
			[]Storm{{Backend: "sqlite", ProviderRefreshes: 1}},
			[]string{Met, Met, Met, Met, Met, Met, NotMeasured, NotMeasured, NotMeasured}},
		{"all missed", []Point{ref, pg(2000, 6*time.Millisecond, 64<<20, 0)},
			[]Storm{{Backend: "sqlite", ProviderRefreshes: 2}},
			[]string{Missed, Missed, Missed, Missed, Missed, Met, NotMeasured, NotMeasured, NotMeasured}},
		{"errors spoil throughput and latency", []Point{ref, pg(9000, time.Millisecond, 1<<20, 3)}, nil,
			[]string{Missed, Missed, Met, Met, Missed, NotMeasured, NotMeasured, NotMeasured}},
		{"no postgres", []Point{ref}, nil,
			[]string{NotMeasured, NotMeasured, NotMeasured, NotMeasured, Met, NotMeasured, NotMeasured, NotMeasured}},
		{"no reference", []Point{pg(3000, 4*time.Millisecond, 40<<20, 0)}, nil,
			[]string{NotMeasured, Met, Met, Met, Met, NotMeasured, NotMeasured, NotMeasured}},
		{"stale storm answers", []Point{ref}, []Storm{{Backend: "postgres", ProviderRefreshes: 1, Stale: 1}},
			[]string{NotMeasured, NotMeasured, NotMeasured, NotMeasured, Missed, Met, NotMeasured, NotMeasured, NotMeasured}},
		{"deployments met", []Point{ref, hops(5000), withCPU(pg(3000, 4*time.Millisecond, 40<<20, 0), 300), serve(2600, 200)}, nil,
			[]string{Met, Met, Met, Met, Met, Met, Met, Met}},
		{"deployments missed", []Point{ref, hops(5000), withCPU(pg(2900, 4*time.Millisecond, 40<<20, 0), 300), serve(2400, 310)}, nil,
			[]string{Met, Met, Met, Met, Met, Missed, Missed, Missed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Points: tc.points, Storms: tc.storms}
			r.evaluate(64)
			var got []string
			for _, tg := range r.Targets {
				got = append(got, tg.Result)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("results %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWriteTableAligns(t *testing.T) {
	var b strings.Builder
	writeTable(&b, [][]string{{"name", "n"}, {"ünïcode —", "1"}, {"x", "12345"}}, []bool{false, true})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"| name      |     n |",
		"| --------- | ----: |",
		"| ünïcode — |     1 |",
		"| x         | 12345 |",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestFakeProvider(t *testing.T) {
	p := newFakeProvider("s3cret", 0)
	defer p.close()
	post := func(form url.Values, user, pass string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, p.tokenURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	code := func(c string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "code_verifier": {"v"}, "redirect_uri": {"http://b/cb"}}
	}
	refresh := func(rt string) url.Values { return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}} }

	for _, tc := range []struct {
		name       string
		form       url.Values
		pass       string
		wantStatus int
		wantLife   float64
		wantRT     bool
	}{
		{"ordinary code lives an hour", code("code-1"), "s3cret", 200, 3600, true},
		{"storm code expires at once", code(stormCodePrefix + "a"), "s3cret", 200, 1, true},
		{"refresh keeps the refresh token", refresh(refreshTokenFor(stormCodePrefix + "a")), "s3cret", 200, 3600, false},
		{"wrong secret", code("code-2"), "nope", 401, 0, false},
		{"code without verifier", url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {"r"}}, "s3cret", 400, 0, false},
		{"unknown refresh token", refresh("other"), "s3cret", 400, 0, false},
		{"unknown grant", url.Values{"grant_type": {"password"}}, "s3cret", 400, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := post(tc.form, fakeClientID, tc.pass)
			if st != tc.wantStatus {
				t.Fatalf("status %d, want %d (%v)", st, tc.wantStatus, body)
			}
			if st != 200 {
				return
			}
			_, hasRT := body["refresh_token"]
			if body["expires_in"] != tc.wantLife || hasRT != tc.wantRT || body["token_type"] != "Bearer" {
				t.Fatalf("body %v", body)
			}
		})
	}
	if n := p.refreshesOf(stormCodePrefix + "a"); n != 1 {
		t.Fatalf("%d refreshes counted for the storm connection, want 1", n)
	}
	if n := p.refreshesOf("code-1"); n != 0 {
		t.Fatalf("%d refreshes counted for a connection that never refreshed", n)
	}
}
