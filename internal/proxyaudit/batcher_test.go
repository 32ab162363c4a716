package proxyaudit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// broker records the batches it was sent; fail decides each delivery.
type fakeBroker struct {
	mu      sync.Mutex
	batches [][]Event
	fail    error
	block   chan struct{} // when set, deliveries wait on it
}

func (f *fakeBroker) send(ctx context.Context, events []Event) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.batches = append(f.batches, append([]Event(nil), events...))
	return nil
}

func (f *fakeBroker) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeBroker) delivered() (events, batches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.batches {
		events += len(b)
	}
	return events, len(f.batches)
}

type drops struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *drops) add(reason string, n int) {
	d.mu.Lock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[reason] += n
	d.mu.Unlock()
}

func (d *drops) get(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[reason]
}

func event(i int) Event { e := goodEvent(); e.BytesOut = int64(i); return e }

func TestBatcherSendsFullBatchesWithoutWaitingForTheInterval(t *testing.T) {
	fb := &fakeBroker{}
	b := NewBatcher(fb.send, BatcherOptions{Interval: time.Hour})
	defer b.Close(context.Background())
	for i := range 2 * MaxBatch {
		b.Add(event(i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, _ := fb.delivered(); n == 2*MaxBatch {
			break
		}
		if time.Now().After(deadline) {
			n, _ := fb.delivered()
			t.Fatalf("%d of %d events delivered with an hour-long interval", n, 2*MaxBatch)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, batches := fb.delivered(); batches != 2 {
		t.Fatalf("%d batches, want 2 of %d", batches, MaxBatch)
	}
}

func TestBatcherSendsEveryInterval(t *testing.T) {
	fb := &fakeBroker{}
	b := NewBatcher(fb.send, BatcherOptions{Interval: 20 * time.Millisecond})
	defer b.Close(context.Background())
	b.Add(event(1))
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := fb.delivered(); n != 1; n, _ = fb.delivered() {
		if time.Now().After(deadline) {
			t.Fatal("a lone event was never sent")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatcherDropsWithACountWhenFull(t *testing.T) {
	fb := &fakeBroker{block: make(chan struct{})}
	var d drops
	b := NewBatcher(fb.send, BatcherOptions{Interval: time.Hour, MaxQueue: 10, Dropped: d.add})
	for i := range 10 {
		b.Add(event(i))
	}
	start := time.Now()
	for i := range 5 {
		b.Add(event(100 + i)) // the queue is full: dropped, never waited on
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("Add waited %v on a full queue", waited)
	}
	if d.get("queue_full") != 5 {
		t.Fatalf("dropped %v, want 5 queue_full", d.n)
	}
	close(fb.block)
	b.Close(context.Background())
	if n, _ := fb.delivered(); n != 10 {
		t.Fatalf("Close delivered %d events, want the 10 queued", n)
	}
	b.Add(event(1))
	if d.get("shutdown") != 1 {
		t.Fatalf("an event after Close: dropped %v", d.n)
	}
}

func TestBatcherKeepsABatchTheBrokerDidNotReceive(t *testing.T) {
	fb := &fakeBroker{fail: errors.New("connection refused")}
	var d drops
	b := NewBatcher(fb.send, BatcherOptions{Interval: time.Hour, Dropped: d.add})
	defer b.Close(context.Background())
	b.Add(event(1))
	b.Add(event(2))
	b.Flush()
	if n, _ := fb.delivered(); n != 0 {
		t.Fatalf("delivered %d while failing", n)
	}
	fb.setFail(nil)
	b.Add(event(3))
	b.Flush()
	if n, batches := fb.delivered(); n != 3 || batches != 1 {
		t.Fatalf("after recovery: %d events in %d batches, want 3 in 1", n, batches)
	}
	fb.mu.Lock()
	order := []int64{fb.batches[0][0].BytesOut, fb.batches[0][1].BytesOut, fb.batches[0][2].BytesOut}
	fb.mu.Unlock()
	if order[0] != 1 || order[1] != 2 || order[2] != 3 {
		t.Fatalf("order after a retry: %v", order)
	}
	if len(d.n) != 0 {
		t.Fatalf("dropped %v", d.n)
	}
}

func TestBatcherDropsARefusedBatch(t *testing.T) {
	fb := &fakeBroker{fail: httpapi.BadRequest("events[0]: time is required")}
	var d drops
	b := NewBatcher(fb.send, BatcherOptions{Interval: time.Hour, Dropped: d.add})
	defer b.Close(context.Background())
	b.Add(event(1))
	b.Flush()
	fb.setFail(nil)
	b.Flush()
	if n, _ := fb.delivered(); n != 0 || d.get("refused") != 1 {
		t.Fatalf("a refused batch: %d delivered later, dropped %v", n, d.n)
	}
}

func TestBatcherCloseGivesUpWhenTheBrokerIsAway(t *testing.T) {
	fb := &fakeBroker{fail: &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "down"}}
	var d drops
	b := NewBatcher(fb.send, BatcherOptions{Interval: time.Hour, Dropped: d.add})
	for i := range 3 {
		b.Add(event(i))
	}
	b.Close(context.Background())
	if d.get("shutdown") != 3 {
		t.Fatalf("dropped %v, want 3 at shutdown", d.n)
	}
}

// Calls with the longest paths an agent can ask for, escaped at their
// largest, still travel in batches the broker accepts (under its 1 MiB
// body limit), however many there are.
func TestBatcherKeepsBatchesUnderTheBodyLimit(t *testing.T) {
	fb := &fakeBroker{}
	sizes := make(chan int, 100)
	send := func(ctx context.Context, events []Event) error {
		raw, err := json.Marshal(Batch{Events: events})
		if err != nil {
			return err
		}
		sizes <- len(raw)
		return fb.send(ctx, events)
	}
	b := NewBatcher(send, BatcherOptions{Interval: time.Hour})
	defer b.Close(context.Background())
	e := goodEvent()
	e.Path = "/" + strings.Repeat("&", MaxPath-1) // "\u0026" each in JSON
	for range MaxBatch {
		b.Add(e.Clipped())
	}
	b.Flush()
	if n, batches := fb.delivered(); n != MaxBatch || batches < 2 {
		t.Fatalf("%d events in %d batches, want %d in several", n, batches, MaxBatch)
	}
	close(sizes)
	for size := range sizes {
		if size > 1<<20 {
			t.Fatalf("a batch of %d bytes: the broker refuses bodies over 1 MiB", size)
		}
	}
}
