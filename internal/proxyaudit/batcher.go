package proxyaudit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// Send delivers one batch to the broker. An *httpapi.Error with a 4xx
// status means the broker refused the batch for what it holds: sending it
// again would not help.
type Send func(ctx context.Context, events []Event) error

// BatcherOptions tune a Batcher; zero values take the defaults.
type BatcherOptions struct {
	// Interval is the longest an event waits before it is sent (1s).
	Interval time.Duration
	// MaxQueue is how many events wait at most (10000); beyond it new
	// events are dropped and counted.
	MaxQueue int
	// SendTimeout bounds one delivery (10s).
	SendTimeout time.Duration
	Logger      *slog.Logger
	// Dropped is told how many events were lost and why: "queue_full"
	// (the broker is slower than the calls, or away), "refused" (the
	// broker refused a batch), "shutdown" (still failing at Close).
	Dropped func(reason string, n int)
}

// Batcher queues audit events off the request path and sends them in
// batches of at most MaxBatch: when a batch fills up, every Interval, and
// on Close. A delivery that fails for a reason other than a refusal is
// kept and tried again with the next batch, as long as the queue has
// room. It is safe for concurrent use.
type Batcher struct {
	send     Send
	interval time.Duration
	maxQueue int
	timeout  time.Duration
	log      *slog.Logger
	dropped  func(string, int)

	mu      sync.Mutex
	pending []Event
	closed  bool

	wake    chan struct{}
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewBatcher starts a Batcher delivering with send.
func NewBatcher(send Send, o BatcherOptions) *Batcher {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 10000
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dropped == nil {
		o.Dropped = func(string, int) {}
	}
	b := &Batcher{send: send, interval: o.Interval, maxQueue: o.MaxQueue, timeout: o.SendTimeout,
		log: o.Logger, dropped: o.Dropped,
		wake: make(chan struct{}, 1), flushes: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// Add queues e without waiting; a full queue, or a closed Batcher, drops
// it and counts it.
func (b *Batcher) Add(e Event) {
	b.mu.Lock()
	if b.closed || len(b.pending) >= b.maxQueue {
		reason := "queue_full"
		if b.closed {
			reason = "shutdown"
		}
		b.mu.Unlock()
		b.dropped(reason, 1)
		return
	}
	b.pending = append(b.pending, e)
	full := len(b.pending) >= MaxBatch
	b.mu.Unlock()
	if full {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// Flush sends everything queued so far and returns when it is done
// (delivered, or kept for another try).
func (b *Batcher) Flush() {
	done := make(chan struct{})
	select {
	case b.flushes <- done:
		<-done
	case <-b.done:
	}
}

// Close sends what is queued, one last try for each batch, and stops; ctx
// bounds how long it may take. Events added afterwards are dropped.
func (b *Batcher) Close(ctx context.Context) {
	b.once.Do(func() { close(b.stop) })
	select {
	case <-b.done:
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.closed = true
	lost := len(b.pending)
	b.pending = nil
	b.mu.Unlock()
	if lost > 0 {
		b.dropped("shutdown", lost)
		b.log.Warn("proxy audit events not delivered at shutdown", "events", lost)
	}
}

func (b *Batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			b.deliver(false, false)
		case <-b.wake:
			b.deliver(true, false)
		case done := <-b.flushes:
			b.deliver(false, false)
			close(done)
		case <-b.stop:
			b.deliver(false, true)
			return
		}
	}
}

// deliver sends the queue batch by batch (only full batches when
// onlyFull: the rest waits for the interval). A batch that fails is put
// back in front of what arrived meanwhile (room permitting) and the rest
// waits for the next round; at shutdown nothing is put back.
func (b *Batcher) deliver(onlyFull, final bool) {
	for {
		b.mu.Lock()
		n := min(len(b.pending), MaxBatch)
		if n == 0 || onlyFull && n < MaxBatch {
			b.mu.Unlock()
			return
		}
		// However long the paths an agent asks for, a batch stays under
		// the broker's body limit, so that no agent can make the broker
		// refuse a batch holding the others' records.
		size := 0
		for i, e := range b.pending[:n] {
			if size += e.maxEncodedSize(); size > maxBatchBytes && i > 0 {
				n = i
				break
			}
		}
		batch := append([]Event(nil), b.pending[:n]...)
		b.pending = append(b.pending[:0], b.pending[n:]...)
		b.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		err := b.send(ctx, batch)
		cancel()
		if err == nil {
			continue
		}
		if e, ok := httpapi.As(err); ok && e.Status >= 400 && e.Status < 500 {
			b.log.Warn("the broker refused a batch of proxy audit events", "events", len(batch), "err", err)
			b.dropped("refused", len(batch))
			continue
		}
		b.log.Warn("proxy audit events not delivered", "events", len(batch), "err", err)
		if final {
			b.dropped("shutdown", len(batch))
			continue
		}
		b.mu.Lock()
		room := b.maxQueue - len(b.pending)
		keep := min(room, len(batch))
		b.pending = append(batch[:keep:keep], b.pending...)
		b.mu.Unlock()
		if keep < len(batch) {
			b.dropped("queue_full", len(batch)-keep)
		}
		return
	}
}
