package httpapi

import (
	"sync"
	"sync/atomic"
)

// SeriesCache remembers the metric children (a vector's WithLabelValues
// results) of each label combination seen, so that a request's metrics
// cost a map read instead of hashing the labels and taking the vector's
// lock. Use it only where the labels come from small fixed sets (route
// patterns, status codes, operation and result words): it keeps every key
// it is given, as the vector keeps every child. New makes the value for a
// key the first time the key is seen, at the moment WithLabelValues would
// have been called, so the same series appear in /metrics as without the
// cache. Vectors whose children are ever deleted must not be cached.
//
// Reads take no lock and do not allocate; the rare miss copies the map.
type SeriesCache[K comparable, V any] struct {
	New func(K) V

	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

// Get returns the value for k, making it with New on the first call.
func (c *SeriesCache[K, V]) Get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v := c.New(k)
	var next map[K]V
	if old == nil {
		next = make(map[K]V, 1)
	} else {
		next = make(map[K]V, len(*old)+1)
		for key, val := range *old {
			next[key] = val
		}
	}
	next[k] = v
	c.m.Store(&next)
	return v
}
