package broker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/readmark"
	"github.com/dromos-dev/dromos/internal/refresh"
)

// metrics are the broker's Prometheus series; names follow the seed and
// are only ever added to, never renamed.
type metrics struct {
	consents        prometheus.Counter
	consentsOpenID  prometheus.Counter
	exchanges       *prometheus.CounterVec
	exchangeSeconds prometheus.Histogram
	idTokens        prometheus.Counter
	tokenGets       *prometheus.CounterVec
	callbacks       *prometheus.CounterVec
	refresh         refresh.Metrics
	oldKeyRows      prometheus.Gauge
	auditDropped    prometheus.Counter
	readMarks       readmark.Metrics
	httpRequests    *prometheus.CounterVec
	httpSeconds     *prometheus.HistogramVec

	// Children of the vectors above used on every request, by label
	// values (none of these vectors ever deletes a child).
	tokenGetSeries httpapi.SeriesCache[tokenGetLabels, prometheus.Counter]
	httpSeries     httpapi.SeriesCache[httpLabels, httpChildren]
}

type tokenGetLabels struct{ provider, hasIDToken string }

type httpLabels struct{ route, status string }

type httpChildren struct {
	requests prometheus.Counter
	seconds  prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauth_consents_created_total", Help: "Consent specs created (pending connections)."}),
		consentsOpenID: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauth_consents_with_openid_total", Help: "Consent specs created that requested openid."}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oauth_token_exchanges_total", Help: "Authorization code exchanges by result."}, []string{"status"}),
		exchangeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "oauth_exchange_duration_seconds", Help: "Time spent exchanging a code at the provider.",
			Buckets: prometheus.DefBuckets}),
		idTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oauth_id_tokens_returned_total", Help: "Token reads that returned an id_token."}),
		tokenGets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oauth_token_get_total", Help: "Token reads by provider."}, []string{"provider", "has_id_token"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oauth_callbacks_total", Help: "Callbacks by outcome."}, []string{"result"}),
		refresh: refresh.Metrics{
			Refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "token_refresh_total", Help: "Token refreshes at providers by result."}, []string{"result"}),
			Seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "token_refresh_duration_seconds", Help: "Time spent refreshing a token at the provider.",
				Buckets: prometheus.DefBuckets}),
			LockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "token_refresh_lock_wait_seconds", Help: "Time readers waited for a connection's refresh lease.",
				Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
			ClientErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "token_refresh_client_errors_total", Help: "Refreshes refused for the broker's client credentials (invalid_client), by provider."}, []string{"provider"}),
			Queue: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "token_refresh_ahead_queue", Help: "Connections found due by the last refresh-ahead pass."}),
			ProviderCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "token_provider_calls_total", Help: "Calls to providers' token endpoints by provider and kind: refreshes (on_read, forced, ahead, keep_alive) and code exchanges (exchange)."}, []string{"provider", "kind"}),
			Deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "token_provider_calls_deferred_total", Help: "Refreshes the provider's call budget put off, by provider and kind."}, []string{"provider", "kind"}),
			BudgetLeft: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "token_provider_budget_left", Help: "Calls left in the provider's current one-minute budget (token_calls_per_minute), as last counted."}, []string{"provider"}),
			AheadDBSeconds: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "token_refresh_ahead_db_seconds_total", Help: "Time refresh-ahead passes spent in database queries finding, reading and planning their work (the refreshes' own writes excluded)."}),
		},
		oldKeyRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vault_ciphertexts_on_old_keys", Help: "Ciphertexts not under the primary encryption key, as of the last count (rotate-keys or the hourly worker count)."}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_events_lost_total", Help: "Queued audit events (token reads) a failed batch write lost."}),
		readMarks: readmark.Metrics{
			Written: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "token_read_marks_written_total", Help: "Connections' last read times written (at most one a minute per connection)."}),
			Dropped: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "token_read_marks_dropped_total", Help: "Last read times not written (pending set full or write failed): those connections are refreshed on read."}),
			Seconds: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "token_read_marks_db_seconds_total", Help: "Time spent writing last read times to the database."}),
		},
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_http_requests_total", Help: "Broker HTTP requests by route and status."}, []string{"route", "status"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "broker_http_request_duration_seconds", Help: "Broker HTTP request duration by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"}),
	}
	m.tokenGetSeries.New = func(l tokenGetLabels) prometheus.Counter {
		return m.tokenGets.WithLabelValues(l.provider, l.hasIDToken)
	}
	m.httpSeries.New = func(l httpLabels) httpChildren {
		return httpChildren{requests: m.httpRequests.WithLabelValues(l.route, l.status), seconds: m.httpSeconds.WithLabelValues(l.route)}
	}
	if reg != nil {
		reg.MustRegister(m.consents, m.consentsOpenID, m.exchanges, m.exchangeSeconds, m.idTokens,
			m.tokenGets, m.callbacks, m.httpRequests, m.httpSeconds,
			m.refresh.Refreshes, m.refresh.Seconds, m.refresh.LockWait, m.refresh.ClientErrors, m.refresh.Queue,
			m.refresh.ProviderCalls, m.refresh.Deferred, m.refresh.BudgetLeft, m.refresh.AheadDBSeconds, m.oldKeyRows, m.auditDropped,
			m.readMarks.Written, m.readMarks.Dropped, m.readMarks.Seconds)
	}
	return m
}

func (m *metrics) observeHTTP(route string, status int, d time.Duration) {
	c := m.httpSeries.Get(httpLabels{route, statusClass(status)})
	c.requests.Inc()
	c.seconds.Observe(d.Seconds())
}

// tokenRead counts a token read (oauth_token_get_total).
func (m *metrics) tokenRead(provider string, hasIDToken bool) {
	m.tokenGetSeries.Get(tokenGetLabels{provider, strconv.FormatBool(hasIDToken)}).Inc()
}

func statusClass(code int) string {
	switch {
	case code < 200:
		return "1xx"
	case code < 300:
		return "2xx"
	case code < 400:
		return "3xx"
	case code < 500:
		return "4xx"
	default:
		return "5xx"
	}
}
