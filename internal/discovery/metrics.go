package discovery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/promreg"
)

// Metrics counts discoveries. A nil *Metrics is valid and records nothing.
type Metrics struct {
	total    *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics creates the discovery metrics and registers them with reg
// (skipped when reg is nil). If the same metrics are already registered,
// the registered collectors are reused, so two components may share one
// registry. It panics on any other registration conflict, which is a
// programming error found at start-up.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oidc_discovery_total",
		Help: "OIDC discovery outcomes: success and error per fetch, stale_served per answer from a copy whose refresh failed.",
	}, []string{"result"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "oidc_discovery_duration_seconds",
		Help:    "Time taken by one discovery fetch, including the RFC 8414 fallback.",
		Buckets: prometheus.DefBuckets,
	})
	m := &Metrics{
		total:    promreg.Register(reg, total),
		duration: promreg.Register(reg, duration),
	}
	for _, r := range []string{"success", "error", "stale_served"} {
		m.total.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) fetched(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.total.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}

func (m *Metrics) staleServed() {
	if m == nil {
		return
	}
	m.total.WithLabelValues("stale_served").Inc()
}
