package outbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the outbox's Prometheus metrics. The relay counts its
// work; the backlog is asked of the database at each scrape:
//
//   - eventfx_outbox_backlog_rows: rows waiting in the outbox;
//   - eventfx_outbox_oldest_age_seconds: age of the oldest waiting row (0
//     when none);
//   - eventfx_outbox_set_aside_rows: rows set aside, waiting for
//     `eventfx outbox retry`;
//   - eventfx_outbox_published_total: rows published and deleted;
//   - eventfx_outbox_set_aside_total: rows this relay set aside;
//   - eventfx_outbox_batches_total{outcome="acked|failed"}: batches;
//   - eventfx_outbox_commit_to_ack_seconds: from a row's insertion (in a
//     short transaction, its commit) to the broker's acknowledgement;
//   - eventfx_inbox_duplicates_total{handler}: messages a transactional
//     handler acknowledged without running, handled before.
//
// A nil *Metrics records nothing.
type Metrics struct {
	st        store
	published prometheus.Counter
	setAside  prometheus.Counter
	batches   *prometheus.CounterVec
	latency   prometheus.Histogram
	dups      *prometheus.CounterVec

	backlog, oldest, aside *prometheus.Desc
}

// newMetrics returns the metrics of the outbox on pool.
func newMetrics(st store) *Metrics {
	return &Metrics{
		st: st,
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfx_outbox_published_total", Help: "Outbox rows published to the broker and deleted.",
		}),
		setAside: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfx_outbox_set_aside_total", Help: "Outbox rows set aside for a permanent failure by this relay.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_outbox_batches_total", Help: "Relay batches, by outcome (acked: published and deleted; failed: rolled back, retried).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventfx_outbox_commit_to_ack_seconds",
			Help:    "From an outbox row's insertion to the broker's acknowledgement of its event.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		dups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_inbox_duplicates_total", Help: "Messages a transactional handler acknowledged without running: handled before.",
		}, []string{"handler"}),
		backlog: prometheus.NewDesc("eventfx_outbox_backlog_rows", "Rows waiting in the outbox.", nil, nil),
		oldest:  prometheus.NewDesc("eventfx_outbox_oldest_age_seconds", "Age of the oldest row waiting in the outbox (0 when none).", nil, nil),
		aside:   prometheus.NewDesc("eventfx_outbox_set_aside_rows", "Outbox rows set aside, waiting for a retry.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.published.Describe(ch)
	m.setAside.Describe(ch)
	m.batches.Describe(ch)
	m.latency.Describe(ch)
	m.dups.Describe(ch)
	ch <- m.backlog
	ch <- m.oldest
	ch <- m.aside
}

// Collect implements prometheus.Collector. The backlog gauges are left
// out of a scrape during which the database does not answer within 2s.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.published.Collect(ch)
	m.setAside.Collect(ch)
	m.batches.Collect(ch)
	m.latency.Collect(ch)
	m.dups.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, oldest, aside, err := m.st.backlog(ctx)
	if err != nil {
		return
	}
	var age float64
	if !oldest.IsZero() {
		age = max(time.Since(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(m.backlog, prometheus.GaugeValue, float64(rows))
	ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(m.aside, prometheus.GaugeValue, float64(aside))
}

func (m *Metrics) batch(acked bool) {
	if m == nil {
		return
	}
	outcome := "failed"
	if acked {
		outcome = "acked"
	}
	m.batches.WithLabelValues(outcome).Inc()
}

// acked records a committed batch: its rows and those set aside.
func (m *Metrics) acked(rows []outboxRow, aside []asideRow) {
	if m == nil {
		return
	}
	now := time.Now()
	m.published.Add(float64(len(rows) - len(aside)))
	m.setAside.Add(float64(len(aside)))
	for _, r := range rows {
		m.latency.Observe(now.Sub(r.created).Seconds())
	}
}

func (m *Metrics) duplicate(handler string) {
	if m != nil {
		m.dups.WithLabelValues(handler).Inc()
	}
}
