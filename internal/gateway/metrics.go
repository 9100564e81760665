package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The gateway's publishes are counted, once, with every other publish by
// the transport's publisher: eventfx_messages_published_total{topic,outcome}
// (internal/metrics, app.MetricsModule), on the same registry.

// metrics are the gateway's Prometheus metrics. Labels stay bounded: the
// route is the pattern, never the topic a caller sent.
type metrics struct {
	requests *prometheus.CounterVec   // eventfx_http_requests_total{route,code}
	duration *prometheus.HistogramVec // eventfx_http_request_duration_seconds{route}
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
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return metrics{}, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}
