package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// DefaultMaxKeys is the bucket count used when Options.MaxKeys is zero.
const DefaultMaxKeys = 10000

// ErrInvalid is returned by New for a rate, burst or option that cannot
// describe a limiter.
var ErrInvalid = errors.New("ratelimit: invalid configuration")

// Options tune a Limiter.
type Options struct {
	// Now is the clock. Required: pass time.Now in production.
	Now func() time.Time
	// MaxKeys bounds the number of buckets kept (DefaultMaxKeys if zero).
	MaxKeys int
	// IdleTTL drops a bucket not used for this long. Zero means the time an
	// empty bucket takes to fill (burst/rate), the shortest value that
	// never hands out extra tokens; a shorter one forgives debts early.
	IdleTTL time.Duration
}

// Limiter is a set of token buckets, one per key.
//
// A bucket is kept as the time at which it would be full again (the
// generic cell rate algorithm), in whole nanoseconds, so refills and
// Retry-After values are exact rather than accumulated floating point.
type Limiter struct {
	interval time.Duration // time to earn one token
	capacity time.Duration // interval × burst: the time to fill an empty bucket
	maxKeys  int
	idle     time.Duration
	now      func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	// The buckets also form a list from most (head) to least (tail)
	// recently used, so idle and surplus buckets are found at the tail in
	// constant time.
	head, tail *bucket
}

type bucket struct {
	key        string
	full       time.Time // when the bucket holds burst tokens again
	last       time.Time // last use
	prev, next *bucket
}

// New returns a limiter allowing rate requests per second per key on
// average and bursts of up to burst requests. Rates are honoured to the
// nanosecond: the interval between tokens is 1/rate seconds rounded to a
// whole nanosecond.
func New(rate float64, burst int, opts Options) (*Limiter, error) {
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate <= 0 {
		return nil, fmt.Errorf("%w: rate must be a positive number of requests per second", ErrInvalid)
	}
	if burst < 1 {
		return nil, fmt.Errorf("%w: burst must be at least 1", ErrInvalid)
	}
	if opts.Now == nil {
		return nil, fmt.Errorf("%w: Now is required", ErrInvalid)
	}
	if opts.MaxKeys < 0 || opts.IdleTTL < 0 {
		return nil, fmt.Errorf("%w: MaxKeys and IdleTTL must not be negative", ErrInvalid)
	}
	interval := math.Round(float64(time.Second) / rate)
	if interval > float64(math.MaxInt64)/float64(burst) {
		return nil, fmt.Errorf("%w: rate is too slow for this burst", ErrInvalid)
	}
	l := &Limiter{
		interval: max(time.Duration(interval), 1),
		maxKeys:  opts.MaxKeys,
		idle:     opts.IdleTTL,
		now:      opts.Now,
		buckets:  make(map[string]*bucket),
	}
	l.capacity = l.interval * time.Duration(burst)
	if l.maxKeys == 0 {
		l.maxKeys = DefaultMaxKeys
	}
	if l.idle == 0 {
		l.idle = l.capacity
	}
	return l, nil
}

// Allow takes a token from key's bucket. When none is left it returns false
// and how long until one will be.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropIdle(now)
	b := l.buckets[key]
	if b == nil {
		b = l.add(key, now)
	} else {
		l.unlink(b)
	}
	l.pushFront(b)
	b.last = now
	// Taking a token pushes the "full again" time one interval further;
	// that is allowed while it stays within one bucket's capacity of now.
	next := b.full
	if next.Before(now) {
		next = now
	}
	next = next.Add(l.interval)
	if over := next.Sub(now) - l.capacity; over > 0 {
		return false, over
	}
	b.full = next
	return true, 0
}

// Len is the number of buckets currently kept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// dropIdle removes buckets unused for the idle TTL; they sit at the tail.
func (l *Limiter) dropIdle(now time.Time) {
	for l.tail != nil && now.Sub(l.tail.last) >= l.idle {
		b := l.tail
		l.unlink(b)
		delete(l.buckets, b.key)
	}
}

// add makes a full bucket for key, recycling the least recently used one
// when the limit on keys is reached.
func (l *Limiter) add(key string, now time.Time) *bucket {
	var b *bucket
	if len(l.buckets) >= l.maxKeys && l.tail != nil {
		b = l.tail
		l.unlink(b)
		delete(l.buckets, b.key)
		*b = bucket{}
	} else {
		b = new(bucket)
	}
	// The key may be a slice of a larger request buffer; keep only itself.
	b.key = strings.Clone(key)
	b.full = now
	b.last = now
	l.buckets[b.key] = b
	return b
}

func (l *Limiter) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else if l.head == b {
		l.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else if l.tail == b {
		l.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (l *Limiter) pushFront(b *bucket) {
	b.next = l.head
	if l.head != nil {
		l.head.prev = b
	}
	l.head = b
	if l.tail == nil {
		l.tail = b
	}
}

// AddrKey is a bucket key for a client address. An IPv6 client usually
// controls a whole /64, so its key is that prefix; otherwise one host could
// take a fresh bucket per request.
func AddrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}
