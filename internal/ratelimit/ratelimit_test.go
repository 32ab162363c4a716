package ratelimit_test

import (
	"errors"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/ratelimit"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t testing.TB, rate float64, burst int, opts ratelimit.Options) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(rate, burst, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// drain takes n tokens and fails if any is refused.
func drain(t *testing.T, l *ratelimit.Limiter, key string, n int) {
	t.Helper()
	for i := range n {
		if ok, _ := l.Allow(key); !ok {
			t.Fatalf("request %d for %q refused", i+1, key)
		}
	}
}

func TestBurstThenRefuse(t *testing.T) {
	c := newClock()
	// 20 a minute, in bursts of 20.
	l := newLimiter(t, 20.0/60, 20, ratelimit.Options{Now: c.Now})
	drain(t, l, "198.51.100.7", 20)
	ok, retry := l.Allow("198.51.100.7")
	if ok {
		t.Fatal("21st request allowed")
	}
	if retry != 3*time.Second {
		t.Fatalf("retryAfter = %v, want 3s (one token at 20/min)", retry)
	}
	// Waiting less than that does not help, and asking again does not
	// push the time further out.
	c.Advance(2 * time.Second)
	if ok, retry := l.Allow("198.51.100.7"); ok || retry != time.Second {
		t.Fatalf("after 2s: ok=%v retry=%v, want refused with 1s left", ok, retry)
	}
	c.Advance(time.Second)
	if ok, _ := l.Allow("198.51.100.7"); !ok {
		t.Fatal("refused after the announced Retry-After")
	}
	if ok, _ := l.Allow("198.51.100.7"); ok {
		t.Fatal("a second token appeared from nowhere")
	}
}

func TestRefill(t *testing.T) {
	cases := []struct {
		name    string
		rate    float64
		burst   int
		drained int
		wait    time.Duration
		allowed int // consecutive requests allowed after wait
	}{
		{"nothing back without time", 2, 5, 5, 0, 0},
		{"partial refill", 2, 5, 5, 1500 * time.Millisecond, 3},
		{"fraction does not round up", 2, 5, 5, 499 * time.Millisecond, 0},
		{"refill capped at burst", 2, 5, 5, time.Hour, 5},
		{"partly drained bucket tops up", 1, 10, 4, 2 * time.Second, 8},
		{"slow rate", 1.0 / 3600, 1, 1, 59 * time.Minute, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			l := newLimiter(t, tc.rate, tc.burst, ratelimit.Options{Now: c.Now, IdleTTL: 1000 * time.Hour})
			drain(t, l, "k", tc.drained)
			c.Advance(tc.wait)
			got := 0
			for {
				ok, _ := l.Allow("k")
				if !ok {
					break
				}
				got++
				if got > tc.burst {
					t.Fatal("more than burst allowed")
				}
			}
			if got != tc.allowed {
				t.Fatalf("allowed %d after %v, want %d", got, tc.wait, tc.allowed)
			}
		})
	}
}

func TestKeysIndependent(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 1, 3, ratelimit.Options{Now: c.Now})
	drain(t, l, "a", 3)
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a not limited")
	}
	drain(t, l, "b", 3)
	if ok, _ := l.Allow("b"); ok {
		t.Fatal("b not limited")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("draining b refilled a")
	}
}

func TestClockGoingBackwardsGivesNothing(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 1, 2, ratelimit.Options{Now: c.Now})
	drain(t, l, "k", 2)
	c.Advance(-time.Hour)
	if ok, _ := l.Allow("k"); ok {
		t.Fatal("token gained from a clock step back")
	}
	c.Advance(time.Hour + time.Second)
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("refill lost after the clock recovered")
	}
}

func TestMemoryBounded(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 1, 5, ratelimit.Options{Now: c.Now, MaxKeys: 1000})
	for i := range 100_000 {
		if ok, _ := l.Allow("10." + strconv.Itoa(i)); !ok {
			t.Fatalf("fresh key %d refused", i)
		}
		if i%997 == 0 && l.Len() > 1000 {
			t.Fatalf("after %d keys: %d buckets kept, max 1000", i+1, l.Len())
		}
	}
	if n := l.Len(); n != 1000 {
		t.Fatalf("%d buckets kept, want exactly MaxKeys", n)
	}
}

func TestIdleBucketsDropped(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 1, 5, ratelimit.Options{Now: c.Now, IdleTTL: time.Minute})
	for i := range 50 {
		l.Allow(strconv.Itoa(i))
	}
	c.Advance(30 * time.Second)
	l.Allow("fresh")
	if n := l.Len(); n != 51 {
		t.Fatalf("%d buckets before the TTL, want 51", n)
	}
	c.Advance(30 * time.Second)
	l.Allow("fresh")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets after the TTL, want only the one in use", n)
	}
}

// The default TTL is the refill time, so dropping an idle bucket never
// gives a limited client more than waiting would have.
func TestDefaultIdleTTLNeverForgives(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 0.5, 4, ratelimit.Options{Now: c.Now})
	drain(t, l, "k", 4)
	c.Advance(7999 * time.Millisecond) // 3.9995 tokens back
	l.Allow("other")
	drain(t, l, "k", 3)
	if ok, _ := l.Allow("k"); ok {
		t.Fatal("bucket dropped before it refilled: extra token")
	}
}

func TestLeastRecentlyUsedIsRecycled(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 1, 2, ratelimit.Options{Now: c.Now, MaxKeys: 2})
	drain(t, l, "a", 2)
	drain(t, l, "b", 2)
	l.Allow("a") // a is now the most recently used
	drain(t, l, "c", 2)
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a lost its state although b was older")
	}
	if l.Len() != 2 {
		t.Fatalf("Len = %d", l.Len())
	}
}

func TestConcurrentAllowHandsOutExactlyBurst(t *testing.T) {
	c := newClock()
	l := newLimiter(t, 1, 100, ratelimit.Options{Now: c.Now, MaxKeys: 8})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				l.Allow("own-" + strconv.Itoa(g%4))
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Fatalf("%d requests allowed with a frozen clock, want burst (100)", n)
	}
}

func TestNewRejects(t *testing.T) {
	now := time.Now
	cases := []struct {
		name  string
		rate  float64
		burst int
		opts  ratelimit.Options
	}{
		{"zero rate", 0, 1, ratelimit.Options{Now: now}},
		{"negative rate", -1, 1, ratelimit.Options{Now: now}},
		{"NaN rate", math.NaN(), 1, ratelimit.Options{Now: now}},
		{"infinite rate", math.Inf(1), 1, ratelimit.Options{Now: now}},
		{"zero burst", 1, 0, ratelimit.Options{Now: now}},
		{"refill time overflows", 1e-12, 1 << 30, ratelimit.Options{Now: now}},
		{"no clock", 1, 1, ratelimit.Options{}},
		{"negative MaxKeys", 1, 1, ratelimit.Options{Now: now, MaxKeys: -1}},
		{"negative IdleTTL", 1, 1, ratelimit.Options{Now: now, IdleTTL: -time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ratelimit.New(tc.rate, tc.burst, tc.opts)
			if !errors.Is(err, ratelimit.ErrInvalid) || l != nil {
				t.Fatalf("New = %v, %v; want ErrInvalid", l, err)
			}
		})
	}
}

func TestAddrKey(t *testing.T) {
	cases := []struct{ name, addr, want string }{
		{"IPv4", "198.51.100.7", "198.51.100.7"},
		{"IPv4-mapped", "::ffff:198.51.100.7", "198.51.100.7"},
		{"IPv6 keyed by /64", "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"IPv6 same /64", "2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"},
		{"IPv6 zone dropped", "fe80::1%eth0", "fe80::/64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ratelimit.AddrKey(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Fatalf("AddrKey(%s) = %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	c := newClock()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	b.Run("known keys", func(b *testing.B) {
		l := newLimiter(b, 1e9, 1<<30, ratelimit.Options{Now: c.Now, MaxKeys: 2048})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(keys[i&1023])
			i++
		}
	})
	b.Run("recycling", func(b *testing.B) {
		l := newLimiter(b, 1, 5, ratelimit.Options{Now: c.Now, MaxKeys: 512})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(keys[i&1023])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := newLimiter(b, 1e9, 1<<30, ratelimit.Options{Now: c.Now, MaxKeys: 2048})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				l.Allow(keys[i&1023])
				i++
			}
		})
	})
}
