// Package metrics is eventfx's Prometheus instrumentation:
//
//   - Messages and NewObserver: the message metrics of every handler, as a
//     router.Observer (hooks at the start and end of deliveries and
//     attempts);
//   - Publishes: the publish metrics of a message.Publisher decorator, for
//     everything a service writes (emitted events, Publisher calls, the
//     gateway's events, poison writes);
//   - Lag: the consumer lag of the handlers' consumer groups, a
//     prometheus.Collector computed at scrape time.
//
// The metric names and labels are a contract for dashboards and alerts
// (README, "Observability"). Every label value is bounded: handler names
// and topics come from the service's wiring, the published topics are
// capped (MaxTopics).
//
// On the per-message path nothing is looked up by label: each handler's
// series are resolved once, when its hooks are built. Deliveries and
// attempts allocate nothing.
package metrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eventfx/eventfx/router"
)

// Outcomes of a delivery, the outcome label of
// eventfx_messages_handled_total.
const (
	// OutcomeSuccess: the handler succeeded (maybe after retries); the
	// message is acknowledged.
	OutcomeSuccess = "success"
	// OutcomePoisoned: the handler finally failed and the message went to
	// the poison topic; it is acknowledged.
	OutcomePoisoned = "poisoned"
	// OutcomeFailed: the handler finally failed and the poison topic could
	// not be written; the message is nacked and delivered again.
	OutcomeFailed = "failed"
	// OutcomeInterrupted: shutdown cancelled the delivery; the message is
	// nacked, never poisoned, and delivered again after the restart.
	OutcomeInterrupted = "interrupted"
)

// Outcomes of one attempt, the outcome label of
// eventfx_handler_attempts_total.
const (
	AttemptSuccess = "success"
	AttemptError   = "error"
)

// Messages are the message metrics of the handlers, labelled by handler
// name and subscribed topic:
//
//   - eventfx_messages_received_total: deliveries that entered the chain,
//     redeliveries included;
//   - eventfx_messages_handled_total{outcome}: deliveries that left it, by
//     outcome (OutcomeSuccess, OutcomePoisoned, OutcomeFailed,
//     OutcomeInterrupted); received = Σ handled + in flight;
//   - eventfx_messages_in_flight: deliveries inside the chain, backoff
//     waits included;
//   - eventfx_handler_attempts_total{outcome}: calls of the handler, by
//     outcome (AttemptSuccess, AttemptError);
//   - eventfx_retries_total: attempts after the first of their delivery;
//   - eventfx_handler_duration_seconds: the duration of each attempt
//     (handler and the publish of its emitted events; not the backoff
//     waits between attempts).
type Messages struct {
	received *prometheus.CounterVec
	handled  *prometheus.CounterVec
	derived  *derived // in flight, and attempts
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMessages registers the message metrics on reg.
func NewMessages(reg prometheus.Registerer) (*Messages, error) {
	hl := []string{"handler", "topic"}
	m := &Messages{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_messages_received_total",
			Help: "Deliveries of messages to a handler, redeliveries included.",
		}, hl),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_messages_handled_total",
			Help: "Deliveries finished, by outcome: success, poisoned (acknowledged), failed (the poison topic could not be written) or interrupted (by shutdown); failed and interrupted messages are delivered again.",
		}, append(hl, "outcome")),
		derived: &derived{
			inFlight: prometheus.NewDesc("eventfx_messages_in_flight",
				"Deliveries being handled, backoff waits between attempts included.", hl, nil),
			attempts: prometheus.NewDesc("eventfx_handler_attempts_total",
				"Calls of the handler (attempts), by outcome: success or error.", append(hl, "outcome"), nil),
			series: map[[2]string]derivedSeries{},
		},
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_retries_total",
			Help: "Attempts after the first of their delivery.",
		}, hl),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventfx_handler_duration_seconds",
			Help:    "Duration of one attempt: the handler and the publish of the events it emits, without backoff waits.",
			Buckets: prometheus.DefBuckets,
		}, hl),
	}
	for _, c := range []prometheus.Collector{m.received, m.handled, m.derived, m.retries, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register message metrics: %w", err)
		}
	}
	return m, nil
}

// NewObserver returns the router.Observer recording m for every handler it
// instruments, and telling lag (if not nil) which consumer group consumes
// which topic.
func NewObserver(m *Messages, lag *Lag) router.Observer {
	return func(info router.HandlerInfo) router.Hooks {
		if lag != nil {
			lag.Track(info.ConsumerGroup, info.Topic)
		}
		return m.hooks(info)
	}
}

// outcomeNames are the handled counters' outcome labels, by router.Outcome.
var outcomeNames = [...]string{
	router.Succeeded:   OutcomeSuccess,
	router.Poisoned:    OutcomePoisoned,
	router.Failed:      OutcomeFailed,
	router.Interrupted: OutcomeInterrupted,
}

// hooks are the metrics of one handler: a delivery and an attempt cost a
// few atomic additions and no allocation.
func (m *Messages) hooks(info router.HandlerInfo) router.Hooks {
	received := m.received.WithLabelValues(info.Name, info.Topic)
	var handled [len(outcomeNames)]prometheus.Counter
	for o, name := range outcomeNames {
		handled[o] = m.handled.WithLabelValues(info.Name, info.Topic, name)
	}
	failedAttempts := prometheus.NewCounter(prometheus.CounterOpts{})
	m.derived.track([2]string{info.Name, info.Topic}, derivedSeries{received: received, handled: handled, failedAttempts: failedAttempts})
	retries := m.retries.WithLabelValues(info.Name, info.Topic)
	duration := m.duration.WithLabelValues(info.Name, info.Topic)
	return router.Hooks{
		Received: func(*message.Message) {
			received.Inc()
		},
		Delivered: func(_ *message.Message, o router.Outcome, _ int) {
			handled[o].Inc()
		},
		AttemptEnded: func(_ *message.Message, attempt int, took time.Duration, err error) {
			if attempt > 1 {
				retries.Inc()
			}
			duration.Observe(took.Seconds())
			if err != nil {
				failedAttempts.Inc()
			}
		},
	}
}

// derived collects the series computed at scrape time from the counters
// every delivery updates anyway, so that the message path does not update
// more counters on cache lines the cores share (each such update was a
// measurable part of the chain's cost):
//
//   - eventfx_messages_in_flight = received - Σ handled;
//   - eventfx_handler_attempts_total{outcome="success"} = handled
//     {outcome="success"}: a delivery succeeds with its one successful
//     attempt, and every successful attempt ends its delivery so;
//   - eventfx_handler_attempts_total{outcome="error"}, counted on the
//     failure path.
type derived struct {
	inFlight, attempts *prometheus.Desc

	mu     sync.Mutex
	series map[[2]string]derivedSeries // by handler and topic
}

// derivedSeries are the counters of one handler.
type derivedSeries struct {
	received       prometheus.Counter
	handled        [len(outcomeNames)]prometheus.Counter
	failedAttempts prometheus.Counter
}

func (d *derived) track(labels [2]string, s derivedSeries) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.series[labels]; ok {
		s.failedAttempts = old.failedAttempts // the same handler, built again
	}
	d.series[labels] = s
}

func (d *derived) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.inFlight
	ch <- d.attempts
}

func (d *derived) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for labels, s := range d.series {
		// The handled counters first: each delivery counts as received
		// before it counts as handled, so the difference is never negative.
		var handled float64
		for _, c := range s.handled {
			handled += counterValue(c)
		}
		inFlight := counterValue(s.received) - handled
		ch <- prometheus.MustNewConstMetric(d.inFlight, prometheus.GaugeValue, inFlight, labels[0], labels[1])
		ch <- prometheus.MustNewConstMetric(d.attempts, prometheus.CounterValue,
			counterValue(s.handled[router.Succeeded]), labels[0], labels[1], AttemptSuccess)
		ch <- prometheus.MustNewConstMetric(d.attempts, prometheus.CounterValue,
			counterValue(s.failedAttempts), labels[0], labels[1], AttemptError)
	}
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
