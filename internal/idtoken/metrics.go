package idtoken

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/promreg"
)

// Metrics counts verifications. A nil *Metrics is valid and records nothing.
type Metrics struct {
	total    *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics creates the verification metrics and registers them with reg
// (skipped when reg is nil). Already registered identical metrics are
// reused; any other registration conflict panics, as it is a programming
// error found at start-up.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oidc_verifications_total",
		Help: "id_token verifications by result: success or the name of the failed check.",
	}, []string{"result"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "oidc_verification_duration_seconds",
		Help:    "Time taken by one id_token verification, including any JWKS fetch.",
		Buckets: prometheus.DefBuckets,
	})
	m := &Metrics{
		total:    promreg.Register(reg, total),
		duration: promreg.Register(reg, duration),
	}
	m.total.WithLabelValues("success")
	for _, c := range checks {
		m.total.WithLabelValues(c)
	}
	return m
}

func (m *Metrics) observe(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
		var ve *Error
		if errors.As(err, &ve) {
			result = ve.Check
		}
	}
	m.total.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}
