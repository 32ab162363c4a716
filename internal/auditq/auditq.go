package auditq

import (
	"context"
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

// Add queues an event; it blocks while the queue is full.
func (q *Queue) Add(e storage.AuditEvent) { q.ch <- e }

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
		if err := q.store.AppendAudit(ctx, batch...); err != nil {
			q.log.Warn("audit batch not written", "events", len(batch), "err", err)
			q.lost.Add(float64(len(batch)))
		}
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
			for drained := false; !drained; {
				select {
				case e := <-q.ch:
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
	q.once.Do(func() { close(q.ch) })
	<-q.done
}
