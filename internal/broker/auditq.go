package broker

import (
	"context"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// auditQueue writes high-volume audit events (token reads) off the request
// path, in batches: one transaction for up to auditBatch events, flushed at
// least every auditLinger. A full queue blocks the reader (backpressure),
// never drops. The cost is that a crash can lose the last few milliseconds
// of token-read events; every other event is written before the request
// answers.
type auditQueue struct {
	b       *Broker
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

func newAuditQueue(b *Broker) *auditQueue {
	q := &auditQueue{b: b, ch: make(chan storage.AuditEvent, auditQueueSize),
		flushes: make(chan chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *auditQueue) add(e storage.AuditEvent) { q.ch <- e }

func (q *auditQueue) run() {
	defer close(q.done)
	batch := make([]storage.AuditEvent, 0, auditBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	write := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := q.b.store.AppendAudit(ctx, batch...); err != nil {
			q.b.log.Warn("audit batch not written", "events", len(batch), "err", err)
			q.b.m.auditDropped.Add(float64(len(batch)))
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

// flush writes everything queued so far.
func (q *auditQueue) flush() {
	done := make(chan struct{})
	select {
	case q.flushes <- done:
		<-done
	case <-q.done:
	}
}

func (q *auditQueue) close() {
	q.once.Do(func() { close(q.ch) })
	<-q.done
}

// FlushAudit writes every queued audit event now (tests, shutdown).
func (b *Broker) FlushAudit() { b.auditq.flush() }

// Close writes the queued audit events and stops the queue. Call it before
// closing the store.
func (b *Broker) Close() { b.auditq.close() }
