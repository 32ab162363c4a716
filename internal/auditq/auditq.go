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
//
// Events wait in a slice under a mutex rather than in a channel: the writer
// is woken when the first event of a batch arrives and when a batch is
// full, not once per event, so a token read costs no goroutine wake-up.
type Queue struct {
	store Appender
	log   *slog.Logger
	lost  prometheus.Counter
	// wake tells the writer that a batch started or filled up (buffered:
	// a signal already pending is enough).
	wake    chan struct{}
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu      sync.Mutex
	space   sync.Cond // signalled when the writer takes pending events
	pending []storage.AuditEvent
	closed  bool
}

const (
	auditQueueSize = 4096
	auditBatch     = 256
	auditLinger    = 20 * time.Millisecond
)

// New starts a queue writing to store; lost counts events a failed batch
// write lost.
func New(store Appender, log *slog.Logger, lost prometheus.Counter) *Queue {
	q := &Queue{store: store, log: log, lost: lost, wake: make(chan struct{}, 1),
		flushes: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	q.space.L = &q.mu
	go q.run()
	return q
}

// Add queues an event; it blocks while the queue is full. After Close the
// event is written at once, on its own.
func (q *Queue) Add(e storage.AuditEvent) {
	q.mu.Lock()
	for len(q.pending) >= auditQueueSize && !q.closed {
		q.space.Wait()
	}
	if !q.closed {
		q.pending = append(q.pending, e)
		n := len(q.pending)
		q.mu.Unlock()
		if n == 1 || n == auditBatch {
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	q.mu.Unlock()
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
	// spare is the slice the last batch was written from, reused for the
	// next one (AppendAudit keeps no reference to its events).
	var spare []storage.AuditEvent
	// writeAll writes every pending event, auditBatch at a time.
	writeAll := func() {
		q.mu.Lock()
		batch := q.pending
		q.pending = spare[:0]
		q.space.Broadcast()
		q.mu.Unlock()
		for rest := batch; len(rest) > 0; {
			n := min(len(rest), auditBatch)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			q.append(ctx, rest[:n])
			cancel()
			rest = rest[n:]
		}
		clear(batch) // no event's strings kept alive by the spare slice
		spare = batch[:0]
	}
	full := func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.pending) >= auditBatch
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-q.wake:
			// A batch started: give it auditLinger to fill, unless it is
			// full already or fills meanwhile.
			if !full() {
				timer.Reset(auditLinger)
				select {
				case <-timer.C:
				case <-q.wake:
					timer.Stop()
				case done := <-q.flushes:
					timer.Stop()
					writeAll()
					close(done)
					continue
				case <-q.stop:
					timer.Stop()
					writeAll()
					return
				}
			}
			writeAll()
		case done := <-q.flushes:
			writeAll()
			close(done)
		case <-q.stop:
			writeAll()
			return
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
		q.space.Broadcast()
		q.mu.Unlock()
		close(q.stop)
	})
	<-q.done
}
