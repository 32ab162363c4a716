package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Outage timings: how long the database stays down, the grace after the
// stop in which a few 502s or dropped calls are tolerated (and reported),
// the bound on full recovery once it is back, and how long every read must
// have succeeded to call it full service.
const (
	outageLength   = 10 * time.Second
	outageGrace    = time.Second
	recoveryBound  = 20 * time.Second
	quietToRecover = 3 * time.Second
)

// reading is one token read during the outage test.
type reading struct {
	path       string // "gateway" or "broker"
	start, end time.Time
	status     int    // 0 when the call failed
	retryAfter string // Retry-After header
	token      string // access_token of a 200
	err        error
}

// readings collects the readers' results.
type readings struct {
	mu   sync.Mutex
	list []reading
}

func (r *readings) add(x reading) {
	r.mu.Lock()
	r.list = append(r.list, x)
	r.mu.Unlock()
}

func (r *readings) snapshot() []reading {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]reading(nil), r.list...)
}

// settled reports whether, for the last quiet period, no reading started
// after since has failed and at least one has succeeded.
func (r *readings) settled(since time.Time, quiet time.Duration) bool {
	calm := since
	if last := r.lastFailureEnd(since); last.After(calm) {
		calm = last
	}
	if time.Since(calm) < quiet {
		return false
	}
	for _, x := range r.snapshot() {
		if x.status == http.StatusOK && x.start.After(calm) {
			return true
		}
	}
	return false
}

func (r *readings) lastFailureEnd(since time.Time) time.Time {
	var last time.Time
	for _, x := range r.snapshot() {
		if !x.start.Before(since) && x.status != http.StatusOK && x.end.After(last) {
			last = x.end
		}
	}
	return last
}

// readLoop reads the token at u until ctx ends.
func readLoop(ctx context.Context, path, u, key string, out *readings) {
	hc := newClient(10 * time.Second)
	for ctx.Err() == nil {
		start := time.Now()
		a, err := send(ctx, hc, "GET", u, key, nil)
		if ctx.Err() != nil {
			return
		}
		x := reading{path: path, start: start, end: time.Now(), err: err}
		if err == nil {
			x.status, x.retryAfter = a.status, a.header.Get("Retry-After")
			if a.status == http.StatusOK {
				x.token = a.str("access_token")
			}
		}
		out.add(x)
		time.Sleep(25 * time.Millisecond)
	}
}

// TestPostgresOutage: the database is stopped (fast shutdown) for 10 s
// while agents read a token through the gateway and directly from the
// broker. While it is down the answers are 503 with Retry-After, never a
// 500 and never a wrong token; once it is back, service returns by itself
// within a bound, without restarting Dromos, and the stored token is
// intact.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	pg := newPGCluster(t)
	s := newSecrets(t)
	broker := startBroker(t, "broker", pg.url(), s)
	gw := startGateway(t, "gateway", broker, s)
	p := newFakeProvider(t, providerBehaviour{codeTTL: 3600, refreshTTL: 3600})
	register(t, broker, p, "steady")
	id := connect(t, broker, "steady")
	want := p.lastAccessToken()

	var got readings
	ctx, stopReaders := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Several readers on each path keep every pooled database connection
	// busy, so the ones the shutdown terminates are used, not just dropped.
	for range 3 {
		for _, r := range []struct{ path, url, key string }{
			{"gateway", gw.url + "/v1/token/" + id, s.agentKey},
			{"broker", broker.url + "/connections/" + id + "/token", ""},
		} {
			wg.Add(1)
			go func() { defer wg.Done(); readLoop(ctx, r.path, r.url, r.key, &got) }()
		}
	}
	defer func() { stopReaders(); wg.Wait() }()

	time.Sleep(time.Second)
	stopAt := time.Now()
	if err := pg.stop(); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	time.Sleep(outageLength)
	restartAt := time.Now()
	if err := pg.start(); err != nil {
		t.Fatal(err)
	}
	upAt := time.Now()
	recovered := eventually(context.Background(), recoveryBound+quietToRecover, func() bool { return got.settled(upAt, quietToRecover) })
	stopReaders()
	wg.Wait()

	list := got.snapshot()
	sort.Slice(list, func(i, j int) bool { return list[i].start.Before(list[j].start) })
	tally := map[string]map[string]int{}
	var tolerated []string
	for _, x := range list {
		phase := "before"
		switch {
		case !x.start.Before(upAt):
			phase = "after restart"
		case !x.start.Before(restartAt):
			phase = "restarting"
		case !x.start.Before(downAt.Add(outageGrace)):
			phase = "down"
		case !x.start.Before(stopAt), !x.end.Before(stopAt):
			// Also a read that began before the stop but was still in
			// flight (a gateway retry, say) when the shutdown started.
			phase = "stopping"
		}
		what := fmt.Sprint(x.status)
		if x.err != nil {
			what = "error"
		}
		if tally[phase] == nil {
			tally[phase] = map[string]int{}
		}
		tally[phase][x.path+" "+what]++

		switch {
		case x.status == http.StatusOK && x.token != want:
			t.Errorf("%s, %s: 200 with a token that is not the stored one", phase, x.path)
		case x.status == http.StatusOK:
		case phase == "before":
			t.Errorf("before the outage, %s: %s (%v)", x.path, what, x.err)
		case x.status == http.StatusServiceUnavailable && x.retryAfter == "":
			t.Errorf("%s, %s: 503 without Retry-After", phase, x.path)
		case x.status == http.StatusServiceUnavailable:
		case (x.status == http.StatusBadGateway || x.err != nil) && phase != "down":
			// The first moments of a shutdown or start-up: reported, not failed.
			tolerated = append(tolerated, fmt.Sprintf("%s %s %s (%v)", phase, x.path, what, x.err))
		default:
			// A 500, or a 4xx that would tell an agent something false
			// about its connection.
			t.Errorf("%s, %s: %s (%v)", phase, x.path, what, x.err)
		}
	}
	for _, phase := range []string{"before", "stopping", "down", "restarting", "after restart"} {
		t.Logf("%-13s %v", phase, tally[phase])
	}
	if len(tolerated) > 0 {
		t.Logf("tolerated around the stop and start: %d\n%s", len(tolerated), strings.Join(tolerated, "\n"))
	}
	if tally["down"]["gateway 503"] == 0 || tally["down"]["broker 503"] == 0 {
		t.Errorf("no 503 while the database was down: %v", tally["down"])
	}
	last := got.lastFailureEnd(upAt)
	if !recovered {
		t.Fatalf("no full service within %s of the database's return", recoveryBound)
	}
	if !last.IsZero() {
		t.Logf("full service %s after the database was back", last.Sub(upAt).Round(10*time.Millisecond))
	}

	// Nothing was restarted, nothing is corrupted: the same token opens.
	if !broker.running() || !gw.running() {
		t.Fatal("a Dromos process exited during the outage")
	}
	stored := storedToken(t, broker, id)
	if stored.status != http.StatusOK || stored.str("access_token") != want {
		t.Fatalf("stored token after the outage: %d %s", stored.status, stored.body)
	}
	if c := status(t, broker, id); c["status"] != "active" {
		t.Fatalf("connection after the outage: %v", c)
	}
	if p.refreshes.Load() != 0 {
		t.Fatalf("the outage caused %d refreshes", p.refreshes.Load())
	}
	assertNoLeak(t, p.secrets(), broker, gw)
}
