package tokencache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/promreg"
)

// metrics are the cache's counters, their children resolved once so that
// a hit costs one atomic add.
type metrics struct {
	hit, miss         prometheus.Counter
	checkOK, checkErr prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, rows func() int) *metrics {
	reads := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_cache_reads_total",
		Help: "Token reads by the token cache: hit (served from memory) or miss (read from the database: not held, or not confirmed within TOKEN_CACHE_STALENESS).",
	}, []string{"result"}))
	checks := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "token_cache_checks_total",
		Help: "Version checks of the token cache's rows against the database, by result (success or error).",
	}, []string{"result"}))
	promreg.Register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "token_cache_rows",
		Help: "Rows (connections with their sealed token) the token cache holds.",
	}, func() float64 { return float64(rows()) }))
	return &metrics{
		hit: reads.WithLabelValues("hit"), miss: reads.WithLabelValues("miss"),
		checkOK: checks.WithLabelValues("success"), checkErr: checks.WithLabelValues("error"),
	}
}
