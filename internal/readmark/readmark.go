package readmark

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Defaults of Options.
const (
	DefaultFlushEvery = 15 * time.Second
	DefaultMinGap     = time.Minute
	// DefaultMaxPending bounds the marks waiting for a flush; beyond it a
	// mark is dropped (and counted): the connection is then refreshed on
	// read, which is always correct, only slower.
	DefaultMaxPending = 200_000
	flushTimeout      = 10 * time.Second
)

// Store is where marks go.
type Store interface {
	RecordReads(ctx context.Context, reads []storage.Read) error
}

// Options tune a Marks; zero values take the defaults.
type Options struct {
	FlushEvery time.Duration // between writes (15 s)
	MinGap     time.Duration // a connection is written at most once per MinGap (1 min)
	MaxPending int           // marks held between writes (200,000)
}

// Metrics count what the marks cost.
type Metrics struct {
	Written prometheus.Counter // marks written
	Dropped prometheus.Counter // marks dropped: pending set full or the write failed
	Seconds prometheus.Counter // time spent writing marks; nil counts nothing
}

// Marks records token reads. It is safe for concurrent use.
type Marks struct {
	store Store
	opts  Options
	m     Metrics
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	pending map[string]time.Time // read since the last write
	written map[string]time.Time // written within MinGap: not again before then

	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New starts the writer. Close stops it after a last write.
func New(store Store, opts Options, m Metrics, log *slog.Logger, now func() time.Time) *Marks {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultFlushEvery
	}
	if opts.MinGap <= 0 {
		opts.MinGap = DefaultMinGap
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	k := &Marks{store: store, opts: opts, m: m, log: log, now: now,
		pending: map[string]time.Time{}, written: map[string]time.Time{},
		flushes: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go k.run()
	return k
}

// Read marks the connection's token as read now. It never blocks on I/O.
func (k *Marks) Read(connectionID string) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if at, ok := k.written[connectionID]; ok && now.Sub(at) < k.opts.MinGap {
		return
	}
	if _, ok := k.pending[connectionID]; !ok && len(k.pending) >= k.opts.MaxPending {
		k.m.Dropped.Inc()
		return
	}
	k.pending[connectionID] = now
}

// Flush writes the pending marks now and waits for the write.
func (k *Marks) Flush() {
	ack := make(chan struct{})
	select {
	case k.flushes <- ack:
		<-ack
	case <-k.done:
	}
}

// Close writes the pending marks and stops the writer.
func (k *Marks) Close() {
	k.once.Do(func() { close(k.stop) })
	<-k.done
}

func (k *Marks) run() {
	defer close(k.done)
	t := time.NewTicker(k.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			k.write()
		case ack := <-k.flushes:
			k.write()
			close(ack)
		case <-k.stop:
			k.write()
			return
		}
	}
}

// write takes the pending marks and writes them in one call. A failed
// write drops them: the next read of each connection marks it again.
func (k *Marks) write() {
	now := k.now()
	k.mu.Lock()
	reads := make([]storage.Read, 0, len(k.pending))
	for id, at := range k.pending {
		reads = append(reads, storage.Read{ConnectionID: id, At: at.UTC()})
		k.written[id] = at
	}
	clear(k.pending)
	// Forget connections written longer than MinGap ago, so that the set
	// stays the size of what was read within a minute.
	for id, at := range k.written {
		if now.Sub(at) >= k.opts.MinGap {
			delete(k.written, id)
		}
	}
	k.mu.Unlock()
	if len(reads) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	start := k.now()
	err := k.store.RecordReads(ctx, reads)
	if k.m.Seconds != nil {
		k.m.Seconds.Add(k.now().Sub(start).Seconds())
	}
	if err != nil {
		k.m.Dropped.Add(float64(len(reads)))
		k.mu.Lock()
		for _, r := range reads {
			// Let the next read mark it again rather than wait a minute.
			delete(k.written, r.ConnectionID)
		}
		k.mu.Unlock()
		k.log.Warn("recording token reads failed", "marks", len(reads), "err", err)
		return
	}
	k.m.Written.Add(float64(len(reads)))
}
