package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// newClient is a keep-alive client able to hold conns idle connections to
// one host, so that a closed loop of conns workers never redials.
func newClient(conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		// Longer than a broker waiting out another replica's refresh lease.
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// requestFunc makes the i-th request of worker w.
type requestFunc func(ctx context.Context, w, i int) (*http.Request, error)

// loadSpec is one closed-loop load: concurrency workers each send a request,
// wait for the whole answer, and send the next, for warmup (not measured)
// and then duration.
type loadSpec struct {
	concurrency      int
	warmup, duration time.Duration
	request          requestFunc
	now              func() time.Time
	// atMeasureStart, when set, runs once as the first measured request is
	// about to start (to read the servers' CPU counters).
	atMeasureStart func()
}

// sample is what a load measured.
type sample struct {
	// latencies of every measured request, sorted.
	latencies []time.Duration
	errors    int
	elapsed   time.Duration
	// firstError describes the first failure (a status or an error type),
	// never a body.
	firstError string
}

func (s sample) requests() int { return len(s.latencies) }

func (s sample) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(len(s.latencies)) / s.elapsed.Seconds()
}

// percentile is the nearest-rank percentile p (0 < p ≤ 100).
func (s sample) percentile(p float64) time.Duration {
	return percentile(s.latencies, p)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(float64(n)*p/100 + 0.999999999)
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// runLoad runs spec with client. A request is measured when it starts at or
// after the warm-up; a worker stops at the first request it would start
// after the end, but not before it has had one measured request, so that a
// stall as long as the whole window still leaves figures to report. A
// non-200 answer or a transport error counts as an error and keeps its
// latency. Requests per second are measured requests over the time from the
// end of the warm-up to the last measured answer.
func runLoad(ctx context.Context, client *http.Client, spec loadSpec) sample {
	measureFrom := spec.now().Add(spec.warmup)
	end := measureFrom.Add(spec.duration)
	type result struct {
		lat      []time.Duration
		errors   int
		first    string
		lastDone time.Time
	}
	results := make([]result, spec.concurrency)
	var once sync.Once
	var wg sync.WaitGroup
	for w := range spec.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			r.lat = make([]time.Duration, 0, 4096)
			for i := 0; ctx.Err() == nil; i++ {
				t0 := spec.now()
				if !t0.Before(end) && len(r.lat) > 0 {
					return
				}
				if spec.atMeasureStart != nil && !t0.Before(measureFrom) {
					once.Do(spec.atMeasureStart)
				}
				failure := do(ctx, client, spec.request, w, i)
				if t0.Before(measureFrom) {
					continue
				}
				r.lastDone = spec.now()
				r.lat = append(r.lat, r.lastDone.Sub(t0))
				if failure != "" {
					r.errors++
					if r.first == "" {
						r.first = failure
					}
				}
			}
		}()
	}
	wg.Wait()
	var s sample
	lastDone := measureFrom
	for _, r := range results {
		s.latencies = append(s.latencies, r.lat...)
		s.errors += r.errors
		if s.firstError == "" {
			s.firstError = r.first
		}
		if r.lastDone.After(lastDone) {
			lastDone = r.lastDone
		}
	}
	slices.Sort(s.latencies)
	s.elapsed = lastDone.Sub(measureFrom)
	return s
}

// do sends one request and reads the whole answer; it returns "" for a 200
// and a short description of anything else.
func do(ctx context.Context, client *http.Client, mk requestFunc, w, i int) string {
	req, err := mk(ctx, w, i)
	if err != nil {
		return "building request: " + err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Sprintf("transport error (%T)", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Sprintf("reading the answer (%T)", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return ""
}

// burst sends n requests at the same moment, each on a goroutine of its own,
// and returns their latencies and each answer's status and body.
func burst(ctx context.Context, client *http.Client, n int, mk requestFunc, now func() time.Time) ([]time.Duration, []int, [][]byte) {
	lat := make([]time.Duration, n)
	status := make([]int, n)
	bodies := make([][]byte, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req, err := mk(ctx, i, 0)
			ready.Done()
			<-gate
			if err != nil {
				return
			}
			t0 := now()
			resp, err := client.Do(req)
			if err == nil {
				bodies[i], err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if err == nil {
					status[i] = resp.StatusCode
				}
			}
			lat[i] = now().Sub(t0)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
	return lat, status, bodies
}
