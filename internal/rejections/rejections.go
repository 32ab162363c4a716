package rejections

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Appender writes audit rows (storage.Storage).
type Appender interface {
	AppendAudit(ctx context.Context, events ...storage.AuditEvent) error
}

// EventType is the audit type of the rows written.
const EventType = "callback.rejected"

// Options tune the aggregation; zero fields take the defaults.
type Options struct {
	// Window is how long rejections are counted before their rows are
	// written (default 1 min).
	Window time.Duration
	// MaxKeys bounds the reason and address pairs kept per window
	// (default 256).
	MaxKeys int
	Now     func() time.Time
	Logger  *slog.Logger
}

type key struct {
	reason string
	addr   netip.Addr
}

// Aggregator counts rejections and writes them per window. Safe for
// concurrent use.
type Aggregator struct {
	store  Appender
	window time.Duration
	max    int
	now    func() time.Time
	log    *slog.Logger

	mu       sync.Mutex
	start    time.Time
	counts   map[key]int
	overflow map[string]int

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New starts an aggregator writing to store.
func New(store Appender, opts Options) *Aggregator {
	if opts.Window <= 0 {
		opts.Window = time.Minute
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Aggregator{store: store, window: opts.Window, max: opts.MaxKeys, now: opts.Now, log: opts.Logger,
		counts: map[key]int{}, overflow: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

// Record counts one rejection; addr may be invalid (unknown).
func (a *Aggregator) Record(reason string, addr netip.Addr) {
	k := key{reason: reason, addr: addr.Unmap()}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.counts) == 0 && len(a.overflow) == 0 {
		a.start = a.now().UTC()
	}
	if _, ok := a.counts[k]; ok || len(a.counts) < a.max {
		a.counts[k]++
		return
	}
	a.overflow[reason]++
}

// take empties the current window and returns its rows.
func (a *Aggregator) take() []storage.AuditEvent {
	a.mu.Lock()
	counts, overflow, start := a.counts, a.overflow, a.start
	a.counts, a.overflow = map[key]int{}, map[string]int{}
	a.mu.Unlock()
	if len(counts) == 0 && len(overflow) == 0 {
		return nil
	}
	end := a.now().UTC()
	row := func(reason, addr string, n int) storage.AuditEvent {
		e := storage.AuditEvent{Time: end, Type: EventType, ClientIP: addr, Detail: map[string]string{
			"reason": reason, "count": strconv.Itoa(n),
			"window_start": start.Format(time.RFC3339), "window_end": end.Format(time.RFC3339)}}
		if addr == "" && overflow[reason] > 0 {
			e.Detail["other_addresses"] = "true"
		}
		return e
	}
	out := make([]storage.AuditEvent, 0, len(counts)+len(overflow))
	for k, n := range counts {
		addr := ""
		if k.addr.IsValid() {
			addr = k.addr.String()
		}
		out = append(out, row(k.reason, addr, n))
	}
	for reason, n := range overflow {
		out = append(out, row(reason, "", n))
	}
	// A stable order makes the rows easy to read and to test.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Detail["reason"] != out[j].Detail["reason"] {
			return out[i].Detail["reason"] < out[j].Detail["reason"]
		}
		return out[i].ClientIP < out[j].ClientIP
	})
	return out
}

// Flush writes the current window's rows now.
func (a *Aggregator) Flush(ctx context.Context) {
	rows := a.take()
	if len(rows) == 0 {
		return
	}
	if err := a.store.AppendAudit(ctx, rows...); err != nil {
		a.log.WarnContext(ctx, "audit append of rejected callbacks failed", "rows", len(rows), "err", err)
	}
}

func (a *Aggregator) run() {
	defer close(a.done)
	t := time.NewTicker(a.window)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			a.Flush(ctx)
			cancel()
		}
	}
}

// Close stops the window timer and writes what is counted.
func (a *Aggregator) Close() {
	a.once.Do(func() {
		close(a.stop)
		<-a.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Flush(ctx)
	})
}
