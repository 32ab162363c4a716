package netlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Limiter.
type Options struct {
	// Max is the most connections open at once across every listener of
	// the Limiter. Required, at least 1.
	Max int
	// Logger receives one warning each time the cap is reached (not one
	// per closed connection). Nil discards.
	Logger *slog.Logger
	// Registerer, when set, receives the net_connections_* series.
	Registerer prometheus.Registerer
}

// Limiter caps the connections accepted through the listeners it wraps.
// It is safe for concurrent use.
type Limiter struct {
	max int
	log *slog.Logger

	// seq orders activity: every read that returns data stamps the
	// connection with the next value, so the smallest stamp is the least
	// recently active connection.
	seq atomic.Uint64

	mu      sync.Mutex
	conns   map[*conn]struct{}
	full    bool // the cap was reached and has not eased since (log once)
	open    *prometheus.GaugeVec
	evicted *prometheus.CounterVec
}

// New returns a Limiter for opts.Max connections.
func New(opts Options) (*Limiter, error) {
	if opts.Max < 1 {
		return nil, fmt.Errorf("netlimit: Max must be at least 1, got %d", opts.Max)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{
		max:   opts.Max,
		log:   log,
		conns: make(map[*conn]struct{}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "net_connections_open",
			Help: "Connections currently open, by listener.",
		}, []string{"listener"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "net_connections_evicted_total",
			Help: "Connections closed to make room for a new one because the connection cap was reached, by listener.",
		}, []string{"listener"}),
	}
	if opts.Registerer != nil {
		limit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "net_connections_limit",
			Help: "The connection cap shared by every listener of the process (MAX_CONNECTIONS).",
		}, func() float64 { return float64(l.max) })
		for _, c := range []prometheus.Collector{l.open, l.evicted, limit} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("netlimit: register metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Max is the cap.
func (l *Limiter) Max() int { return l.max }

// Open is the number of connections currently counted.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Listener wraps ln so that its connections count against the cap. name
// labels its metrics (for example "gateway-grpc").
func (l *Limiter) Listener(name string, ln net.Listener) net.Listener {
	l.open.WithLabelValues(name) // show 0 before the first connection
	l.evicted.WithLabelValues(name)
	return &listener{Listener: ln, lim: l, name: name}
}

type listener struct {
	net.Listener
	lim  *Limiter
	name string
}

// Accept waits for the next connection and counts it, closing the least
// recently active connection first when the cap is reached. If the process
// is out of file descriptors anyway (other files count too), it closes the
// least recently active connection and tries once more rather than leave
// the listener failing until some connection happens to end.
func (ln *listener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil && outOfFiles(err) && ln.lim.evictOldest() {
		c, err = ln.Listener.Accept()
	}
	if err != nil {
		return nil, err
	}
	return ln.lim.track(ln.name, c), nil
}

func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// track counts c, making room first if the cap is reached.
func (l *Limiter) track(name string, c net.Conn) net.Conn {
	w := &conn{Conn: c, lim: l, name: name}
	w.active.Store(l.seq.Add(1))
	l.mu.Lock()
	var victim *conn
	if len(l.conns) >= l.max {
		victim = l.oldestLocked()
		l.removeLocked(victim)
		if !l.full {
			l.full = true
			l.log.Warn("connection cap reached: closing the least recently active connections to make room (see MAX_CONNECTIONS)",
				"max_connections", l.max)
		}
	}
	l.conns[w] = struct{}{}
	l.open.WithLabelValues(name).Inc()
	l.mu.Unlock()
	if victim != nil {
		l.evicted.WithLabelValues(victim.name).Inc()
		_ = victim.Conn.Close()
	}
	return w
}

// evictOldest closes the least recently active connection, if any.
func (l *Limiter) evictOldest() bool {
	l.mu.Lock()
	victim := l.oldestLocked()
	if victim != nil {
		l.removeLocked(victim)
	}
	l.mu.Unlock()
	if victim == nil {
		return false
	}
	l.evicted.WithLabelValues(victim.name).Inc()
	_ = victim.Conn.Close()
	return true
}

// oldestLocked scans every connection: eviction happens only at the cap,
// and a scan of a few thousand stamps costs less than the accept itself,
// while keeping an ordered structure would cost a lock on every read.
func (l *Limiter) oldestLocked() *conn {
	var oldest *conn
	var stamp uint64
	for c := range l.conns {
		if s := c.active.Load(); oldest == nil || s < stamp {
			oldest, stamp = c, s
		}
	}
	return oldest
}

// removeLocked stops counting c; it reports whether c was counted.
func (l *Limiter) removeLocked(c *conn) bool {
	if _, ok := l.conns[c]; !ok {
		return false
	}
	delete(l.conns, c)
	l.open.WithLabelValues(c.name).Dec()
	if l.full && len(l.conns) < l.max*9/10 {
		l.full = false
	}
	return true
}

// conn is a counted connection.
type conn struct {
	net.Conn
	lim    *Limiter
	name   string
	active atomic.Uint64
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.active.Store(c.lim.seq.Add(1))
	}
	return n, err
}

func (c *conn) Close() error {
	c.lim.mu.Lock()
	c.lim.removeLocked(c)
	c.lim.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite passes through to a TCP connection, which net/http uses to
// let a client read an error answer before the connection closes.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
