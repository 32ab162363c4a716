package discovery

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const ttl = time.Hour

// newCache returns a cache on a fake clock whose background refreshes report
// their outcome on the returned channel.
func newCache(t *testing.T, s *server, reg prometheus.Registerer) (*Cache, *clock, <-chan error) {
	t.Helper()
	clk := newClock()
	var m *Metrics
	if reg != nil {
		m = NewMetrics(reg)
	}
	c := New(Options{HTTPClient: s.Client(), Now: clk.Now, TTL: ttl, RetryInterval: time.Minute, Metrics: m})
	refreshed := make(chan error, 16)
	c.afterRefresh = func(_ string, err error) { refreshed <- err }
	return c, clk, refreshed
}

func TestGetServesLastGoodCopyDuringOutage(t *testing.T) {
	s := newServer(t, false)
	s.route(openIDSuffix, serveJSON(document(s.URL)))
	reg := prometheus.NewRegistry()
	c, clk, refreshed := newCache(t, s, reg)
	ctx := context.Background()

	first, err := c.Get(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, s.URL); err != nil {
		t.Fatal(err)
	}
	if got := s.count(openIDSuffix); got != 1 {
		t.Fatalf("requests after two Gets = %d, want 1", got)
	}

	s.route(openIDSuffix, serveStatus(http.StatusServiceUnavailable))
	clk.Advance(ttl * 85 / 100)
	if md, err := c.Get(ctx, s.URL); err != nil || md.TokenEndpoint != first.TokenEndpoint {
		t.Fatalf("Get at 85%% of TTL = %+v, %v; want the cached copy", md, err)
	}
	if err := receive(t, refreshed); !errors.Is(err, ErrHTTPStatus) {
		t.Fatalf("refresh error = %v, want ErrHTTPStatus", err)
	}

	// Past the TTL, the outage continues: still the good copy, never an error.
	clk.Advance(ttl)
	for range 3 {
		if md, err := c.Get(ctx, s.URL); err != nil || md.TokenEndpoint != first.TokenEndpoint {
			t.Fatalf("Get past TTL = %+v, %v; want the stale copy", md, err)
		}
	}
	if err := receive(t, refreshed); err == nil {
		t.Fatal("second refresh succeeded against a failing server")
	}
	if got := s.count(openIDSuffix); got != 3 {
		t.Errorf("requests = %d, want 3 (first fetch, two refreshes)", got)
	}
	if got := counterValue(t, reg, "stale_served"); got != 3 {
		t.Errorf("stale_served = %v, want 3", got)
	}
	if got := counterValue(t, reg, "error"); got != 2 {
		t.Errorf("error = %v, want 2", got)
	}
	if got := counterValue(t, reg, "success"); got != 1 {
		t.Errorf("success = %v, want 1", got)
	}
}

func TestFailingRefreshRetriedAtMostOncePerInterval(t *testing.T) {
	s := newServer(t, false)
	s.route(openIDSuffix, serveJSON(document(s.URL)))
	c, clk, refreshed := newCache(t, s, nil)
	ctx := context.Background()
	if _, err := c.Get(ctx, s.URL); err != nil {
		t.Fatal(err)
	}
	s.route(openIDSuffix, serveStatus(http.StatusInternalServerError))

	clk.Advance(2 * ttl)
	if _, err := c.Get(ctx, s.URL); err != nil {
		t.Fatal(err)
	}
	receive(t, refreshed)
	clk.Advance(time.Minute - time.Second)
	if _, err := c.Get(ctx, s.URL); err != nil {
		t.Fatal(err)
	}
	if got := s.count(openIDSuffix); got != 2 {
		t.Fatalf("requests within the retry interval = %d, want 2", got)
	}

	s.route(openIDSuffix, serveJSON(document(s.URL)))
	clk.Advance(time.Second)
	if _, err := c.Get(ctx, s.URL); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, refreshed); err != nil {
		t.Fatalf("refresh after the retry interval: %v", err)
	}
	if got := s.count(openIDSuffix); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

func TestBackgroundRefreshPicksUpChangedDocument(t *testing.T) {
	s := newServer(t, false)
	s.route(openIDSuffix, serveJSON(document(s.URL)))
	c, clk, refreshed := newCache(t, s, nil)
	ctx := context.Background()
	if _, err := c.Get(ctx, s.URL); err != nil {
		t.Fatal(err)
	}

	changed := document(s.URL)
	changed["token_endpoint"] = s.URL + "/v2/token"
	s.route(openIDSuffix, serveJSON(changed))

	clk.Advance(ttl / 2)
	if md, _ := c.Get(ctx, s.URL); md.TokenEndpoint != s.URL+"/token" {
		t.Fatalf("at half TTL token endpoint = %q, want the cached one", md.TokenEndpoint)
	}
	if got := s.count(openIDSuffix); got != 1 {
		t.Fatalf("requests at half TTL = %d, want 1 (no refresh yet)", got)
	}

	clk.Advance(ttl * 31 / 100)
	// The Get that triggers the refresh is not held up by it.
	if md, _ := c.Get(ctx, s.URL); md.TokenEndpoint != s.URL+"/token" {
		t.Fatalf("triggering Get returned %q, want the cached copy", md.TokenEndpoint)
	}
	if err := receive(t, refreshed); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	md, err := c.Get(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if md.TokenEndpoint != s.URL+"/v2/token" {
		t.Errorf("after refresh token endpoint = %q, want the changed one", md.TokenEndpoint)
	}
	if got := s.count(openIDSuffix); got != 2 {
		t.Errorf("requests = %d, want 2", got)
	}
}

func TestConcurrentFirstGetFetchesOnce(t *testing.T) {
	s := newServer(t, false)
	release := make(chan struct{})
	doc := serveJSON(document(s.URL))
	s.route(openIDSuffix, func(w http.ResponseWriter, r *http.Request) {
		<-release
		doc(w, r)
	})
	c, _, _ := newCache(t, s, nil)
	const callers = 8
	joined := make(chan struct{}, callers)
	c.onJoin = func(string) { joined <- struct{}{} }

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			md, err := c.Get(context.Background(), s.URL)
			if err == nil && md.Issuer != s.URL {
				err = errors.New("wrong document")
			}
			errs <- err
		})
	}
	// Hold the one request until every other caller waits on it.
	for range callers - 1 {
		receive(t, joined)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Get: %v", err)
		}
	}
	if got := s.count(openIDSuffix); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestGetRemembersFailureWithoutCopy(t *testing.T) {
	s := newServer(t, false)
	s.route(openIDSuffix, serveStatus(http.StatusInternalServerError))
	c, clk, _ := newCache(t, s, nil)
	ctx := context.Background()

	for range 3 {
		if _, err := c.Get(ctx, s.URL); !errors.Is(err, ErrHTTPStatus) {
			t.Fatalf("Get error = %v, want ErrHTTPStatus", err)
		}
	}
	if got := s.count(openIDSuffix); got != 1 {
		t.Fatalf("requests = %d, want 1 within the retry interval", got)
	}

	s.route(openIDSuffix, serveJSON(document(s.URL)))
	clk.Advance(time.Minute)
	if _, err := c.Get(ctx, s.URL); err != nil {
		t.Fatalf("Get after the retry interval: %v", err)
	}
	if got := s.count(openIDSuffix); got != 2 {
		t.Errorf("requests = %d, want 2", got)
	}
}

func TestGetHonoursCallerContext(t *testing.T) {
	s := newServer(t, false)
	release := make(chan struct{})
	s.route(openIDSuffix, func(w http.ResponseWriter, r *http.Request) {
		<-release
		serveJSON(document(s.URL))(w, r)
	})
	defer close(release)
	c, _, _ := newCache(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, s.URL); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with cancelled context = %v, want context.Canceled", err)
	}
}

func TestNilMetricsAreSafe(t *testing.T) {
	var m *Metrics
	m.fetched(time.Second, nil)
	m.fetched(time.Second, errors.New("x"))
	m.staleServed()
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewMetrics(reg)
	b := NewMetrics(reg)
	a.staleServed()
	b.staleServed()
	if got := counterValue(t, reg, "stale_served"); got != 2 {
		t.Errorf("stale_served = %v, want 2 (shared collectors)", got)
	}
}
