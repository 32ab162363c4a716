package revocation

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/promreg"
)

type metrics struct {
	outcomes *prometheus.CounterVec
	pending  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		outcomes: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dromos_revocations_total",
			Help: "Revocation attempts at providers by outcome: yes (revoked), pending (will retry), failed (given up or refused), no (nothing to revoke)."},
			[]string{"outcome"})),
		pending: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dromos_revocations_pending", Help: "Revocations waiting for a retry."})),
	}
}

func (m *metrics) outcome(o Outcome) { m.outcomes.WithLabelValues(string(o)).Inc() }
