package httpapi

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered returns each series of the registry's only metric family by its
// label values, with its count.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := ""
			for _, l := range m.GetLabel() {
				k += l.GetName() + "=" + l.GetValue() + ";"
			}
			out[k] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestSeriesCacheReturnsTheVectorsChildren(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total", Help: "h"}, []string{"route", "status"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(vec)
	type key struct{ route, status string }
	var made atomic.Int64
	c := SeriesCache[key, prometheus.Counter]{New: func(k key) prometheus.Counter {
		made.Add(1)
		return vec.WithLabelValues(k.route, k.status)
	}}
	if got := gathered(t, reg); len(got) != 0 {
		t.Fatalf("series before any use: %v", got)
	}
	keys := []key{{"GET /a", "2xx"}, {"GET /a", "4xx"}, {"GET /b", "2xx"}}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				k := keys[i%len(keys)]
				c.Get(k).Inc()
			}
		}()
	}
	wg.Wait()
	if made.Load() != int64(len(keys)) {
		t.Errorf("New called %d times for %d keys", made.Load(), len(keys))
	}
	for _, k := range keys {
		if c.Get(k) != vec.WithLabelValues(k.route, k.status) {
			t.Errorf("%v: cached child is not the vector's", k)
		}
	}
	want := map[string]float64{"route=GET /a;status=2xx;": 800, "route=GET /a;status=4xx;": 800, "route=GET /b;status=2xx;": 800}
	got := gathered(t, reg)
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("series %v, want %v", got, want)
		}
	}
}
