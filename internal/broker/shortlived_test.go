package broker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
)

// Tokens that live less than the refresh margin (20 s here against the
// default 60 s) are refreshed when two thirds of their life is gone, once:
// not on every read, not by every waiter, not on every worker pass.

const (
	shortTTL = 20 // seconds
	// shortDue is when a 20-second token is due: its expiry less a third
	// of its lifetime.
	shortDue = shortTTL * time.Second * 2 / 3
)

func setupShortLived(t *testing.T, dbURL string) (*harness, *rotatingProvider, string) {
	t.Helper()
	h := newHarness(t, dbURL)
	p := newRotatingProvider(t)
	p.set(func(p *rotatingProvider) { p.ttl = shortTTL })
	h.registerProvider(p.profile("short"))
	return h, p, connect(t, h, "short")
}

// TestShortLivedTokenRefreshedOncePerLifetime: two minutes of reads every
// half second cause one refresh per token lifetime less the margin, and
// every reader gets an unexpired token.
func TestShortLivedTokenRefreshedOncePerLifetime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupShortLived(t, dbURL)
		if st, tok := h.token(id); st != 200 || tok["access_token"] != "at-1" || p.refreshes.Load() != 0 {
			t.Fatalf("read of a token issued just now: %d %v, %d refreshes", st, tok["access_token"], p.refreshes.Load())
		}
		const elapsed = 2 * time.Minute
		step := 500 * time.Millisecond
		for at := step; at <= elapsed; at += step {
			h.clock.Advance(step)
			st, tok := h.token(id)
			if st != 200 {
				t.Fatalf("read at %v: %d %v", at, st, tok)
			}
			exp, err := time.Parse(time.RFC3339, tok["expires_at"].(string))
			if err != nil || !exp.After(h.clock.Now().Add(-time.Second)) {
				t.Fatalf("read at %v got a token expiring at %v", at, tok["expires_at"])
			}
		}
		max := int64(elapsed/shortDue) + 1
		if n := p.refreshes.Load(); n > max || n < max-2 || p.reused.Load() != 0 {
			t.Fatalf("%d refreshes in %v of 20-second tokens (%d with a consumed refresh token), want at most %d and at least %d",
				n, elapsed, p.reused.Load(), max, max-2)
		}
		t.Logf("%d refreshes in %v", p.refreshes.Load(), elapsed)
	})
}

// TestShortLivedStormAcrossBrokers: three brokers on one database, 300
// concurrent readers of a 20-second token that expired 2 s ago: exactly one
// provider refresh, and every reader gets its token. Waiters take the token
// another broker wrote after they read the row.
func TestShortLivedStormAcrossBrokers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupShortLived(t, dbURL)
		p.set(func(p *rotatingProvider) { p.delay = 200 * time.Millisecond })
		brokers := []*harness{h}
		for range 2 {
			o := newHarness(t, dbURL)
			o.clock = h.clock
			o.start()
			brokers = append(brokers, o)
		}
		h.clock.Advance((shortTTL + 2) * time.Second)
		var wg sync.WaitGroup
		var bad atomic.Int64
		got := make([]string, 300)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, tok := brokers[i%3].token(id)
				if st != 200 {
					bad.Add(1)
					return
				}
				got[i], _ = tok["access_token"].(string)
			}()
		}
		wg.Wait()
		distinct := map[string]int{}
		for _, at := range got {
			distinct[at]++
		}
		if n := p.refreshes.Load(); n != 1 || bad.Load() != 0 || len(distinct) != 1 || distinct["at-2"] != 300 {
			t.Fatalf("%d refreshes, %d failed reads, tokens handed out: %v", n, bad.Load(), distinct)
		}
	})
}

// TestWorkerDoesNotLoopOnShortLivedTokens: a 20-second token is within the
// worker's 2-minute window from the start. A pass before it is due leaves it
// alone and records when it is due, so later passes skip it until then.
func TestWorkerDoesNotLoopOnShortLivedTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupShortLived(t, dbURL)
		ctx := context.Background()
		issued := h.clock.Now()
		opts := broker.WorkerOptions{Interval: time.Nanosecond}
		pass := func(when string, want int) {
			t.Helper()
			n, err := h.broker.RefreshDue(ctx, opts)
			if err != nil || n != want {
				t.Fatalf("pass %s: %d refreshed (err %v), want %d; provider saw %d", when, n, err, want, p.refreshes.Load())
			}
		}
		h.clock.Advance(time.Second)
		pass("1 s after consent", 0)
		c, err := h.store.GetConnection(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d := c.NextRefreshAt.Sub(issued.Add(shortDue)); d < -time.Second || d > time.Second {
			t.Fatalf("next refresh planned %v after consent, want %v", c.NextRefreshAt.Sub(issued), shortDue)
		}
		// Not picked again before it is due: the row is not even written.
		for range 3 {
			h.clock.Advance(3 * time.Second)
			pass(fmt.Sprintf("%v after consent", h.clock.Now().Sub(issued)), 0)
		}
		if again, _ := h.store.GetConnection(ctx, id); again.Version != c.Version {
			t.Fatalf("passes before the due time wrote the connection (version %d, then %d)", c.Version, again.Version)
		}
		h.clock.Advance(shortDue - 10*time.Second + time.Second) // 14 s after consent
		pass("once due", 1)
		if st, tok := h.token(id); st != 200 || tok["access_token"] != "at-2" || p.refreshes.Load() != 1 {
			t.Fatalf("read after the worker's refresh: %d %v, %d refreshes", st, tok["access_token"], p.refreshes.Load())
		}
		// Two minutes of passes every 15 s: one refresh a pass at most,
		// never two for one token.
		for range 8 {
			h.clock.Advance(15 * time.Second)
			pass("every 15 s", 1)
		}
		if n := p.refreshes.Load(); n != 9 || p.reused.Load() != 0 {
			t.Fatalf("%d refreshes (%d reused) after 9 due passes", n, p.reused.Load())
		}
	})
}

// TestForcedRefreshOfShortLivedToken: a forced refresh makes exactly one
// provider call, and the token it returns is then served as it is.
func TestForcedRefreshOfShortLivedToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupShortLived(t, dbURL)
		h.clock.Advance(time.Second)
		var tok map[string]any
		if st := h.do("POST", "/connections/"+id+"/refresh", nil, &tok); st != 200 || tok["access_token"] != "at-2" {
			t.Fatalf("forced refresh: %d %v", st, tok)
		}
		for range 13 {
			h.clock.Advance(time.Second)
			if st, again := h.token(id); st != 200 || again["access_token"] != "at-2" {
				t.Fatalf("read after the forced refresh: %d %v", st, again)
			}
		}
		if n := p.refreshes.Load(); n != 1 {
			t.Fatalf("provider saw %d refreshes, want 1", n)
		}
	})
}
