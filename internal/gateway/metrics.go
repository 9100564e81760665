package gateway

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The gateway's publishes are counted, once, with every other publish by
// the transport's publisher: eventfx_messages_published_total{topic,outcome}
// (internal/metrics, app.MetricsModule), on the same registry.

// metrics are the gateway's Prometheus metrics. Labels stay bounded: the
// route is the pattern, never the topic a caller sent.
//
// The series are looked up once each, on their first request, and kept:
// a label lookup hashes the label values and takes the vector's lock on
// every request otherwise. They are created when first used, as before,
// so a status no request got has no series.
type metrics struct {
	requests *prometheus.CounterVec   // eventfx_http_requests_total{route,code}
	duration *prometheus.HistogramVec // eventfx_http_request_duration_seconds{route}

	// codes[status] is the requests counter of status, once looked up.
	codes [600]atomic.Pointer[prometheus.Counter]
	// observer is the route's duration series, once looked up.
	observer atomic.Pointer[prometheus.Observer]
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
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
			return nil, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}

// request counts a request answered with status after elapsed.
func (m *metrics) request(status int, elapsed time.Duration) {
	m.counter(status).Inc()
	o := m.observer.Load()
	if o == nil {
		obs := m.duration.WithLabelValues(route)
		o = &obs
		m.observer.Store(o)
	}
	(*o).Observe(elapsed.Seconds())
}

// counter is the requests counter of status. Two requests that look one
// up at once get the same series (the vector's), and either keeps it.
func (m *metrics) counter(status int) prometheus.Counter {
	if status < 0 || status >= len(m.codes) {
		return m.requests.WithLabelValues(route, strconv.Itoa(status))
	}
	if c := m.codes[status].Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(route, strconv.Itoa(status))
	m.codes[status].Store(&c)
	return c
}
