package auditq

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Appender writes audit events in one transaction.
type Appender interface {
	AppendAudit(ctx context.Context, events ...storage.AuditEvent) error
}

// Queue writes high-volume audit events (token reads) off the request
// path, in batches: one transaction for up to auditBatch events, flushed at
// least every auditLinger. A full queue blocks the reader (backpressure),
// never drops. The cost is that a crash can lose the last few milliseconds
// of token-read events; every other event is written before the request
// answers.
type Queue struct {
	store   Appender
	log     *slog.Logger
	lost    prometheus.Counter
	ch      chan storage.AuditEvent
	flushes chan chan struct{}
	done    chan struct{}
	once    sync.Once
	// mu guards closed: Add holds it for reading while it sends, Close for
	// writing while it closes ch, so no send meets a closed channel.
	mu     sync.RWMutex
	closed bool
}

const (
	auditQueueSize = 4096
	auditBatch     = 256
	auditLinger    = 20 * time.Millisecond
)

// New starts a queue writing to store; lost counts events a failed batch
// write lost.
func New(store Appender, log *slog.Logger, lost prometheus.Counter) *Queue {
	q := &Queue{store: store, log: log, lost: lost, ch: make(chan storage.AuditEvent, auditQueueSize),
		flushes: make(chan chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

// Add queues an event; it blocks while the queue is full. After Close the
// event is written at once, on its own.
func (q *Queue) Add(e storage.AuditEvent) {
	q.mu.RLock()
	if !q.closed {
		q.ch <- e
		q.mu.RUnlock()
		return
	}
	q.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.append(ctx, []storage.AuditEvent{e})
}

// append writes events in one transaction. When that fails for a reason
// other than the store being unavailable, the events are written one by
// one, so one event the store refuses does not take the others with it.
func (q *Queue) append(ctx context.Context, events []storage.AuditEvent) {
	err := q.store.AppendAudit(ctx, events...)
	if err == nil {
		return
	}
	if len(events) > 1 && !errors.Is(err, storage.ErrUnavailable) && ctx.Err() == nil {
		lost := 0
		for _, e := range events {
			if err := q.store.AppendAudit(ctx, e); err != nil {
				q.log.Warn("audit event not written", "type", e.Type, "connection_id", e.ConnectionID, "err", err)
				lost++
			}
		}
		q.lost.Add(float64(lost))
		return
	}
	q.log.Warn("audit batch not written", "events", len(events), "err", err)
	q.lost.Add(float64(len(events)))
}

func (q *Queue) run() {
	defer close(q.done)
	batch := make([]storage.AuditEvent, 0, auditBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	write := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		q.append(ctx, batch)
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case e, ok := <-q.ch:
			if !ok {
				write()
				return
			}
			if len(batch) == 0 {
				timer.Reset(auditLinger)
			}
			batch = append(batch, e)
			if len(batch) >= auditBatch {
				timer.Stop()
				write()
			}
		case <-timer.C:
			write()
		case done := <-q.flushes:
			// Drain what is queued now, then write.
			closed := false
			for drained := false; !drained; {
				select {
				case e, ok := <-q.ch:
					if !ok {
						drained, closed = true, true
						break
					}
					batch = append(batch, e)
					if len(batch) >= auditBatch {
						write()
					}
				default:
					drained = true
				}
			}
			timer.Stop()
			write()
			close(done)
			if closed {
				return
			}
		}
	}
}

// Flush writes everything queued so far.
func (q *Queue) Flush() {
	done := make(chan struct{})
	select {
	case q.flushes <- done:
		<-done
	case <-q.done:
	}
}

// Close writes what is queued and stops the queue.
func (q *Queue) Close() {
	q.once.Do(func() {
		q.mu.Lock()
		q.closed = true
		close(q.ch)
		q.mu.Unlock()
	})
	<-q.done
}
