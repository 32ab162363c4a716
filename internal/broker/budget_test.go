package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

// TestProviderBudgetAcrossReplicas: two brokers on one PostgreSQL share a
// provider's budget of 10 refreshes a minute. Their worker passes, run at
// once over 14 due connections, use at most 8 (two are kept for reads);
// agents' reads then get the last two, and further reads are served the
// still valid token without a provider call. The provider never sees more
// than 10 in the minute.
func TestProviderBudgetAcrossReplicas(t *testing.T) {
	dbURL := "postgres" + storagetest.PostgresURL(t)[len("postgres"):]
	h := newHarness(t, dbURL)
	p := newRotatingProvider(t)
	prof := p.profile("limited")
	prof["token_calls_per_minute"] = 10
	h.registerProvider(prof)
	b := newHarness(t, dbURL)
	b.clock = h.clock
	b.start()

	var ids []string
	for range 14 {
		ids = append(ids, connect(t, h, "limited"))
	}
	for _, id := range ids {
		if st, _ := h.token(id); st != 200 {
			t.Fatalf("first read: %d", st)
		}
	}
	h.broker.FlushReads()
	// 50 s before the tokens expire: due for the worker (2-minute window)
	// and for readers (60 s margin); all of it within one budget minute.
	h.clock.Advance(time.Hour - 50*time.Second)

	opts := broker.WorkerOptions{Interval: time.Nanosecond}
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, r := range []*harness{h, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := r.broker.RefreshDue(context.Background(), opts)
			if err != nil {
				t.Errorf("pass: %v", err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if got := p.refreshes.Load(); got != 8 || counts[0]+counts[1] != 8 {
		t.Fatalf("worker passes: provider saw %d refreshes, passes counted %v; want 8 (10 less the 2 kept for reads)", got, counts)
	}
	// The passes leave 6 connections unrefreshed: reads of them, on both
	// brokers, use the 2 calls left and then get the still valid token.
	served := 0
	for i, id := range ids {
		r := h
		if i%2 == 1 {
			r = b
		}
		if st, tok := r.token(id); st == 200 && tok["access_token"] != nil {
			served++
		}
	}
	if served != 14 {
		t.Fatalf("%d of 14 reads served, want all", served)
	}
	h.broker.FlushReads()
	b.broker.FlushReads()
	if got := p.refreshes.Load(); got != 10 {
		t.Fatalf("provider saw %d refreshes in the minute, want 10 (8 ahead, 2 on read)", got)
	}
	// Another pass in the same minute: nothing left for background work.
	if n, err := b.broker.RefreshDue(context.Background(), opts); err != nil || n != 0 || p.refreshes.Load() != 10 {
		t.Fatalf("pass after the budget was spent: %d refreshed (err %v), provider saw %d", n, err, p.refreshes.Load())
	}
	// The next minute has a new budget: the worker refreshes the rest.
	h.clock.Advance(time.Minute)
	n, err := h.broker.RefreshDue(context.Background(), opts)
	if err != nil || n == 0 || p.refreshes.Load() > 18 {
		t.Fatalf("pass in the next minute: %d refreshed (err %v), provider saw %d", n, err, p.refreshes.Load())
	}
}

// TestRateLimitedProviderSlowsBackgroundWork: a 429 with Retry-After keeps
// every worker pass away from the provider until then, while a read that
// needs a refresh still gets one.
func TestRateLimitedProviderSlowsBackgroundWork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, first := setupRotating(t, dbURL)
		second := connect(t, h, "rot")
		for _, id := range []string{first, second} {
			h.token(id)
		}
		h.broker.FlushReads()
		p.set(func(p *rotatingProvider) {
			p.fail = func() (int, string) { return 429, `{"error":"slow_down"}` }
			p.retryAfter = "120"
		})
		h.clock.Advance(time.Hour - 100*time.Second) // inside the worker's window, outside the read margin
		// The test runs past an hour after the reads: a wider read window.
		opts := broker.WorkerOptions{Interval: time.Nanosecond, ReadWindow: 2 * time.Hour}
		if _, err := h.broker.RefreshDue(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		limited := p.refreshes.Load()
		if limited == 0 {
			t.Fatal("the first pass did not reach the provider")
		}
		p.set(func(p *rotatingProvider) { p.fail, p.retryAfter = nil, "" })
		// 30 s later the connections' own backoff (15 s) is over, the
		// provider's Retry-After is not: passes stay away.
		for range 3 {
			h.clock.Advance(10 * time.Second)
			if n, err := h.broker.RefreshDue(context.Background(), opts); err != nil || n != 0 {
				t.Fatalf("pass during Retry-After: %d refreshed, %v", n, err)
			}
		}
		if got := p.refreshes.Load(); got != limited {
			t.Fatalf("provider saw %d more calls during its Retry-After", got-limited)
		}
		// A read inside the margin still refreshes (reads are not held back).
		h.clock.Advance(15 * time.Second) // 55 s left
		if st, tok := h.token(first); st != 200 || tok["access_token"] == nil {
			t.Fatalf("read during Retry-After: %d %v", st, tok)
		}
		if got := p.refreshes.Load(); got != limited+1 {
			t.Fatalf("read during Retry-After: provider saw %d calls, want %d", got, limited+1)
		}
		// Once the Retry-After is over, the worker works again.
		h.clock.Advance(80 * time.Second)
		n, err := h.broker.RefreshDue(context.Background(), opts)
		if err != nil || n != 1 || p.refreshes.Load() != limited+2 {
			t.Fatalf("pass after Retry-After: %d refreshed (%v), provider saw %d, want 1 and %d", n, err, p.refreshes.Load(), limited+2)
		}
	})
}
