package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of eventfx_messages_published_total.
const (
	outcomePublished = "published" // the broker acknowledged
	outcomeFailed    = "failed"    // an error or no acknowledgement in time
)

// metrics are the gateway's Prometheus metrics. Labels stay bounded: the
// route is the pattern, never the topic a caller sent.
type metrics struct {
	requests  *prometheus.CounterVec   // eventfx_http_requests_total{route,code}
	duration  *prometheus.HistogramVec // eventfx_http_request_duration_seconds{route}
	published *prometheus.CounterVec   // eventfx_messages_published_total{outcome}
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_http_requests_total",
			Help: "Gateway API requests by route and HTTP status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventfx_http_request_duration_seconds",
			Help:    "Time to answer a gateway API request, including the wait for the broker's acknowledgement.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_messages_published_total",
			Help: "Events the gateway tried to publish, by outcome: published (acknowledged) or failed.",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.published} {
		if err := reg.Register(c); err != nil {
			return metrics{}, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	// Export both outcomes from the start, so rate() and alerts see zeros.
	m.published.WithLabelValues(outcomePublished)
	m.published.WithLabelValues(outcomeFailed)
	return m, nil
}
