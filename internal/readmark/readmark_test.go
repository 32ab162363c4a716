package readmark

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dromos-dev/dromos/internal/storage"
)

type recorder struct {
	mu    sync.Mutex
	calls [][]storage.Read
	fail  error
}

func (r *recorder) RecordReads(_ context.Context, reads []storage.Read) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.calls = append(r.calls, slices.Clone(reads))
	return nil
}

// ids returns the ids written by call i, sorted.
func (r *recorder) ids(i int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.calls) {
		return nil
	}
	var ids []string
	for _, x := range r.calls[i] {
		ids = append(ids, x.ConnectionID)
	}
	slices.Sort(ids)
	return ids
}

func (r *recorder) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newMarks(t *testing.T, st Store, opts Options) (*Marks, *clock, Metrics) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m := Metrics{Written: prometheus.NewCounter(prometheus.CounterOpts{Name: "w"}),
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})}
	if opts.FlushEvery == 0 {
		opts.FlushEvery = time.Hour // the tests flush by hand
	}
	k := New(st, opts, m, slog.New(slog.DiscardHandler), c.now)
	t.Cleanup(k.Close)
	return k, c, m
}

func TestOneWritePerConnectionPerMinute(t *testing.T) {
	rec := &recorder{}
	k, c, m := newMarks(t, rec, Options{})
	for range 1000 {
		k.Read("a")
	}
	k.Read("b")
	k.Flush()
	if got := rec.ids(0); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("first write = %q, want [a b]", got)
	}
	if at := rec.calls[0][0].At; !at.Equal(c.now()) {
		t.Fatalf("mark time %v, want %v", at, c.now())
	}
	// Read again within the minute: nothing new to write.
	c.add(30 * time.Second)
	k.Read("a")
	k.Read("c")
	k.Flush()
	if got := rec.ids(1); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("second write = %q, want [c] (a was written 30 s ago)", got)
	}
	// A minute after its write, a is written again.
	c.add(31 * time.Second)
	k.Read("a")
	k.Flush()
	if got := rec.ids(2); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("third write = %q, want [a]", got)
	}
	// Nothing pending: no write at all.
	k.Flush()
	if rec.n() != 3 {
		t.Fatalf("%d writes, want 3 (an empty flush must not write)", rec.n())
	}
	if got := value(m.Written); got != 4 {
		t.Fatalf("written = %v, want 4", got)
	}
}

func TestFullPendingSetDropsAndCounts(t *testing.T) {
	rec := &recorder{}
	k, _, m := newMarks(t, rec, Options{MaxPending: 2})
	k.Read("a")
	k.Read("b")
	k.Read("a") // already pending: not a drop
	k.Read("c")
	k.Flush()
	if got := rec.ids(0); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("write = %q, want [a b]", got)
	}
	if got := value(m.Dropped); got != 1 {
		t.Fatalf("dropped = %v, want 1", got)
	}
}

func TestFailedWriteLetsTheNextReadMarkAgain(t *testing.T) {
	rec := &recorder{fail: errors.New("database down")}
	k, _, m := newMarks(t, rec, Options{})
	k.Read("a")
	k.Flush()
	if got := value(m.Dropped); got != 1 {
		t.Fatalf("dropped = %v, want 1", got)
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	k.Read("a")
	k.Flush()
	if got := rec.ids(0); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("write after the failure = %q, want [a]", got)
	}
}

func TestCloseWritesPending(t *testing.T) {
	rec := &recorder{}
	k, _, _ := newMarks(t, rec, Options{})
	k.Read("a")
	k.Close()
	if got := rec.ids(0); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("write on close = %q, want [a]", got)
	}
	k.Flush() // after Close: returns at once
}

func TestTickerWrites(t *testing.T) {
	rec := &recorder{}
	k, _, _ := newMarks(t, rec, Options{FlushEvery: time.Millisecond})
	k.Read("a")
	deadline := time.Now().Add(5 * time.Second)
	for rec.n() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no write within 5 s with a 1 ms flush interval")
		}
		time.Sleep(time.Millisecond)
	}
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
