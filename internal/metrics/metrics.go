package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// deliveryBuckets are the outbox delivery latency buckets in seconds: from
// an immediate send to a DM that waited a day of retries.
var deliveryBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600}

// Metrics is one app's metrics: its own registry (no global state, so
// several apps in one process, as in the tests, count apart). Create it
// with New; safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	log       *slog.Logger
	labels    *labeler
	upstream  *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	delivery  prometheus.Histogram
}

// New returns the metrics with the Go runtime and process collectors
// registered; log (nil → discard) gets the upstream lines and collection
// errors.
func New(log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		log:    log,
		labels: newLabeler(),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: NameUpstreamRequests,
			Help: "Requests to the atproto network (PDSes, auth servers, identity), by host, XRPC method and HTTP status (\"error\": no answer).",
		}, []string{LabelHost, LabelMethod, LabelStatus}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: NameTokenRefreshes,
			Help: "OAuth refresh grants sent to auth servers, by outcome.",
		}, []string{LabelOutcome}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: NameOutboxDelivery,
			Help:    "Time from an outbox row being queued to its DM being sent.",
			Buckets: deliveryBuckets,
		}),
	}
	m.refreshes.WithLabelValues(outcomeOK)
	m.refreshes.WithLabelValues(outcomeErr)
	m.reg.MustRegister(m.upstream, m.refreshes, m.delivery,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format. A
// collector that fails (the outbox query) is logged and left out; the
// rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// TokenRefreshed counts one refresh grant; err is its result.
func (m *Metrics) TokenRefreshed(err error) {
	outcome := outcomeOK
	if err != nil {
		outcome = outcomeErr
	}
	m.refreshes.WithLabelValues(outcome).Inc()
}

// Delivered observes one outbox row's queued_at → sent_at.
func (m *Metrics) Delivered(latency time.Duration) {
	m.delivery.Observe(latency.Seconds())
}
