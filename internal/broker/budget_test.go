package broker_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/storage"
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

	// Code exchanges spend the budget too: the 11th to 14th go ahead over
	// it, counted, because the next minute is more than 30 s away. (From
	// the second half of a minute they would wait for the next one, on a
	// test clock that stands still.)
	now := h.clock.Now()
	h.clock.Advance(now.Truncate(time.Minute).Add(time.Minute + time.Second).Sub(now))
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

// TestCodeExchangesSpendProviderBudget: code exchanges take slots of the
// provider's budget (3 a minute) with a read's priority: two exchanges use
// up what background work may have, so a pass in that minute stays away
// from the provider; a third exchange still gets the slot kept for users;
// a fourth, with the budget spent and the next minute 25 s away, waits for
// it instead of calling the provider; and one whose next minute is too far
// off goes ahead over the budget rather than losing the user's code, still
// counted, so background work keeps yielding.
func TestCodeExchangesSpendProviderBudget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		p := newRotatingProvider(t)
		prof := p.profile("limited")
		prof["token_calls_per_minute"] = 3
		h.registerProvider(prof)
		// A failure while a callback waits for the next minute must not
		// leave it waiting on the test clock (the server's Close would
		// wait for it).
		t.Cleanup(func() { h.clock.Advance(2 * time.Minute) })
		exchanges := func() int64 { return p.calls.Load() - p.refreshes.Load() }
		// into moves the clock forward to sec seconds past a minute.
		into := func(sec int) {
			now := h.clock.Now()
			h.clock.Advance((time.Duration(sec)*time.Second - now.Sub(now.Truncate(time.Minute)) + time.Minute) % time.Minute)
		}
		// callback finishes a consent off the test goroutine and reports
		// its status, so that a wait shows as a callback not yet answered.
		callback := func(c consentResp) <-chan int {
			done := make(chan int, 1)
			go func() {
				resp, err := h.flow.Get(h.srv.URL + "/auth/callback?" + url.Values{"state": {c.State}, "code": {"c"}}.Encode())
				if err != nil {
					done <- 0
					return
				}
				resp.Body.Close()
				done <- resp.StatusCode
			}()
			return done
		}
		answered := func(done <-chan int, c consentResp) {
			t.Helper()
			select {
			case st := <-done:
				if st != 302 || h.status(c.ConnectionID) != storage.StatusActive {
					t.Fatalf("callback: %d, connection %s", st, h.status(c.ConnectionID))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("callback not answered")
			}
		}
		opts := broker.WorkerOptions{Interval: time.Nanosecond, ReadWindow: 2 * time.Hour}

		into(10)
		due := connect(t, h, "limited")
		if st, _ := h.token(due); st != 200 {
			t.Fatalf("read: %d", st)
		}
		h.broker.FlushReads()
		// due's token now has 30 to 90 s left: in the worker's window.
		h.clock.Advance(time.Hour - 90*time.Second)
		into(35)

		// Two exchanges: all background work may use this minute.
		connect(t, h, "limited")
		connect(t, h, "limited")
		if n, err := h.broker.RefreshDue(context.Background(), opts); err != nil || n != 0 || p.refreshes.Load() != 0 {
			t.Fatalf("pass after two exchanges: %d refreshed (%v), provider saw %d refreshes; want none", n, err, p.refreshes.Load())
		}
		// The slot kept for users serves a third exchange at once.
		connect(t, h, "limited")
		if got := exchanges(); got != 4 {
			t.Fatalf("provider saw %d exchanges, want 4", got)
		}

		// Budget spent, next minute in 25 s: the exchange waits for it.
		waiting := h.consent("limited", nil, returnURL)
		done := callback(waiting)
		time.Sleep(300 * time.Millisecond)
		select {
		case st := <-done:
			t.Fatalf("callback answered (%d) with the budget spent", st)
		default:
		}
		if got := exchanges(); got != 4 {
			t.Fatalf("provider saw %d exchanges while the budget was spent, want 4", got)
		}
		into(1)
		answered(done, waiting)
		if got := exchanges(); got != 5 {
			t.Fatalf("provider saw %d exchanges after the wait, want 5", got)
		}

		// Two more fill the new minute; the next one cannot wait 59 s, so
		// it goes ahead, counted over the budget.
		connect(t, h, "limited")
		connect(t, h, "limited")
		over := h.consent("limited", nil, returnURL)
		answered(callback(over), over)
		if got := exchanges(); got != 8 {
			t.Fatalf("provider saw %d exchanges, want 8", got)
		}
		if n, err := h.broker.RefreshDue(context.Background(), opts); err != nil || n != 0 || p.refreshes.Load() != 0 {
			t.Fatalf("pass in a minute exchanges filled: %d refreshed (%v), provider saw %d refreshes", n, err, p.refreshes.Load())
		}
		// A new minute: the worker gets its share again.
		h.clock.Advance(time.Minute)
		if n, err := h.broker.RefreshDue(context.Background(), opts); err != nil || n != 1 || p.refreshes.Load() != 1 {
			t.Fatalf("pass in the next minute: %d refreshed (%v), provider saw %d refreshes; want 1", n, err, p.refreshes.Load())
		}
	})
}
