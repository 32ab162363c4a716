package delivery

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	deliveries *prometheus.CounterVec
	depth      prometheus.Gauge
	oldest     prometheus.Gauge
	disabled   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dromos_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: delivered, retry (failed, will be tried again), failed (given up), lease_lost.",
		}, []string{"result"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dromos_webhook_queue_depth",
			Help: "Deliveries waiting for enabled webhook endpoints.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dromos_webhook_oldest_undelivered_seconds",
			Help: "Age of the oldest delivery waiting for an enabled webhook endpoint (0 when none).",
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dromos_webhook_endpoints_disabled_total",
			Help: "Webhook endpoints disabled because they kept failing.",
		}),
	}
	for _, r := range []string{"delivered", "retry", "failed", "lease_lost"} {
		m.deliveries.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.depth, m.oldest, m.disabled)
	}
	return m
}
