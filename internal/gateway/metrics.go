package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// metrics are the gateway's Prometheus series. Label values come from
// fixed sets (route patterns, operation names, result words), never from
// request data, so cardinality stays bounded.
type metrics struct {
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	brokerRequests  *prometheus.CounterVec
	brokerDuration  *prometheus.HistogramVec
	refreshTotal    *prometheus.CounterVec
	refreshDuration prometheus.Histogram

	// Children of the vectors above used on every request, by label
	// values (none of these vectors ever deletes a child).
	httpSeries   httpapi.SeriesCache[httpLabels, seriesPair]
	brokerSeries httpapi.SeriesCache[brokerLabels, seriesPair]
}

type httpLabels struct {
	route  string
	status int
}

type brokerLabels struct{ op, result string }

// seriesPair is a request counter and its duration histogram.
type seriesPair struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_requests_total",
			Help: "HTTP requests served by the gateway, by route pattern and status.",
		}, []string{"route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		brokerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_broker_requests_total",
			Help: "Attempts at broker calls, by operation and result.",
		}, []string{"op", "result"}),
		brokerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_broker_request_duration_seconds",
			Help:    "Time of one attempt at a broker call, by operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"op"}),
		refreshTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_refresh_total",
			Help: "Refreshes requested through the gateway's refresh proxy, by result.",
		}, []string{"result"}),
		refreshDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "token_refresh_duration_seconds",
			Help:    "Time of a refresh through the gateway's refresh proxy.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	m.httpSeries.New = func(l httpLabels) seriesPair {
		return seriesPair{m.httpRequests.WithLabelValues(l.route, strconv.Itoa(l.status)), m.httpDuration.WithLabelValues(l.route)}
	}
	m.brokerSeries.New = func(l brokerLabels) seriesPair {
		return seriesPair{m.brokerRequests.WithLabelValues(l.op, l.result), m.brokerDuration.WithLabelValues(l.op)}
	}
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.brokerRequests, m.brokerDuration, m.refreshTotal, m.refreshDuration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeHTTP(route string, status int, elapsed time.Duration) {
	s := m.httpSeries.Get(httpLabels{route, status})
	s.count.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func (m *metrics) observeBroker(op, result string, elapsed time.Duration) {
	s := m.brokerSeries.Get(brokerLabels{op, result})
	s.count.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func (m *metrics) refreshed(result string, elapsed time.Duration) {
	m.refreshTotal.WithLabelValues(result).Inc()
	m.refreshDuration.Observe(elapsed.Seconds())
}
