package auditq_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dromos-dev/dromos/internal/auditq"
	"github.com/dromos-dev/dromos/internal/storage"
)

type recorder struct {
	mu      sync.Mutex
	batches [][]storage.AuditEvent
	fail    bool
}

func (r *recorder) AppendAudit(_ context.Context, events ...storage.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("database down")
	}
	r.batches = append(r.batches, append([]storage.AuditEvent(nil), events...))
	return nil
}

func (r *recorder) written() (events, batches int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		events += len(b)
	}
	return events, len(r.batches)
}

func TestBatchesAndFlush(t *testing.T) {
	rec := &recorder{}
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"})
	q := auditq.New(rec, slog.New(slog.DiscardHandler), lost)
	defer q.Close()
	for i := range 1000 {
		q.Add(storage.AuditEvent{Type: "token.read", ConnectionID: string(rune('a' + i%26))})
	}
	q.Flush()
	events, batches := rec.written()
	if events != 1000 {
		t.Fatalf("flush wrote %d events, want 1000", events)
	}
	// 1000 events in batches of at most 256 take at least 4 writes; one
	// write per event would mean no batching at all.
	if batches < 4 || batches > 100 {
		t.Fatalf("%d batches for 1000 events", batches)
	}
	if value(lost) != 0 {
		t.Fatal("events counted as lost")
	}
}

func TestFailedWriteCountsLostAndCloseDrains(t *testing.T) {
	rec := &recorder{fail: true}
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"})
	q := auditq.New(rec, slog.New(slog.DiscardHandler), lost)
	for range 10 {
		q.Add(storage.AuditEvent{Type: "token.read"})
	}
	q.Flush()
	if got := value(lost); got != 10 {
		t.Fatalf("lost = %v, want 10", got)
	}
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	for range 5 {
		q.Add(storage.AuditEvent{Type: "token.read"})
	}
	q.Close()
	if events, _ := rec.written(); events != 5 {
		t.Fatalf("close wrote %d events, want 5", events)
	}
	q.Flush() // after Close: returns at once instead of blocking
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// refuser is a store that refuses any transaction holding an event of
// type "bad", as PostgreSQL refuses a row with invalid UTF-8.
type refuser struct{ recorder }

func (r *refuser) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	for _, e := range events {
		if e.Type == "bad" {
			return errors.New("invalid byte sequence")
		}
	}
	return r.recorder.AppendAudit(ctx, events...)
}

// One event the store refuses costs only itself, not its batch.
func TestRefusedEventDoesNotSinkItsBatch(t *testing.T) {
	rec := &refuser{}
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"})
	q := auditq.New(rec, slog.New(slog.DiscardHandler), lost)
	defer q.Close()
	for i := range 10 {
		typ := "token.read"
		if i == 4 {
			typ = "bad"
		}
		q.Add(storage.AuditEvent{Type: typ})
	}
	q.Flush()
	if events, _ := rec.written(); events != 9 || value(lost) != 1 {
		t.Fatalf("written %d, lost %v; want 9 and 1", events, value(lost))
	}
}

// Flush racing Close returns, and an event added after Close is written.
func TestFlushCloseAndAddAfterClose(t *testing.T) {
	rec := &recorder{}
	q := auditq.New(rec, slog.New(slog.DiscardHandler), prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"}))
	for range 100 {
		q.Add(storage.AuditEvent{Type: "token.read"})
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); q.Flush() }()
	}
	q.Close()
	wg.Wait()
	q.Add(storage.AuditEvent{Type: "token.read"})
	if events, _ := rec.written(); events != 101 {
		t.Fatalf("written %d events, want 101", events)
	}
}
