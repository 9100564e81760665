// Package metrics is eventfx's Prometheus instrumentation:
//
//   - Messages and NewObserver: the message metrics of every handler, as a
//     router.Observer (one middleware per delivery, one per attempt);
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
// series are resolved once, when its middleware is built. A delivery costs
// one small allocation (the state its attempts report to), an attempt none.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfx/eventfx/internal/meta"
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
	inFlight *prometheus.GaugeVec
	attempts *prometheus.CounterVec
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
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventfx_messages_in_flight",
			Help: "Deliveries being handled, backoff waits between attempts included.",
		}, hl),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_handler_attempts_total",
			Help: "Calls of the handler (attempts), by outcome: success or error.",
		}, append(hl, "outcome")),
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
	for _, c := range []prometheus.Collector{m.received, m.handled, m.inFlight, m.attempts, m.retries, m.duration} {
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
	return router.Observer{
		Message: func(info router.HandlerInfo) message.HandlerMiddleware {
			if lag != nil {
				lag.Track(info.ConsumerGroup, info.Topic)
			}
			return m.delivery(info)
		},
		Attempt: m.attempt,
	}
}

// delivery is the state of one delivery, shared by its attempts through
// the message's context. It is the context itself, so a delivery costs one
// allocation. Attempts run one after the other on the delivery's
// goroutine: no lock is needed.
type delivery struct {
	context.Context
	attempts int
	// failed is whether the last attempt failed: when the chain still
	// acknowledges the message, the poison queue took it.
	failed bool
}

type deliveryKey struct{}

func (d *delivery) Value(key any) any {
	if key == (deliveryKey{}) {
		return d
	}
	return d.Context.Value(key)
}

// outcome indexes a handler's handled counters.
type outcome int

const (
	success outcome = iota
	poisoned
	failed
	interrupted
	numOutcomes
)

var outcomeNames = [numOutcomes]string{OutcomeSuccess, OutcomePoisoned, OutcomeFailed, OutcomeInterrupted}

// delivery is the per-delivery middleware of one handler: it sits outside
// the poison queue and retry (router.Observer.Message), so it sees the
// final outcome.
func (m *Messages) delivery(info router.HandlerInfo) message.HandlerMiddleware {
	received := m.received.WithLabelValues(info.Name, info.Topic)
	inFlight := m.inFlight.WithLabelValues(info.Name, info.Topic)
	var handled [numOutcomes]prometheus.Counter
	for o, name := range outcomeNames {
		handled[o] = m.handled.WithLabelValues(info.Name, info.Topic, name)
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			received.Inc()
			inFlight.Inc()
			defer inFlight.Dec()
			parent := msg.Context()
			d := &delivery{Context: parent}
			msg.SetContext(d)
			produced, err := h(msg)
			msg.SetContext(parent)
			handled[d.outcome(err)].Inc()
			return produced, err
		}
	}
}

// outcome classifies the chain's result. Inside it, the poison queue
// acknowledges (nil) only a success or a message it poisoned; it returns
// router.ErrInterrupted for a delivery cancelled by shutdown, and any other
// error when the poison topic could not be written.
func (d *delivery) outcome(err error) outcome {
	switch {
	case err == nil && d.failed:
		return poisoned
	case err == nil:
		return success
	case errors.Is(err, router.ErrInterrupted):
		return interrupted
	default:
		return failed
	}
}

// attempt is the per-attempt middleware of one handler, inside retry
// (router.Observer.Attempt).
func (m *Messages) attempt(info router.HandlerInfo) message.HandlerMiddleware {
	ok := m.attempts.WithLabelValues(info.Name, info.Topic, AttemptSuccess)
	failedAttempts := m.attempts.WithLabelValues(info.Name, info.Topic, AttemptError)
	retries := m.retries.WithLabelValues(info.Name, info.Topic)
	duration := m.duration.WithLabelValues(info.Name, info.Topic)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			d, _ := ctx.Value(deliveryKey{}).(*delivery)
			var n int
			if d != nil {
				d.attempts++
				n = d.attempts
			} else {
				n = meta.Attempt(ctx) // an Attempt middleware without its Message one
			}
			if n > 1 {
				retries.Inc()
			}
			start := time.Now()
			produced, err := h(msg)
			duration.Observe(time.Since(start).Seconds())
			if err != nil {
				failedAttempts.Inc()
			} else {
				ok.Inc()
			}
			if d != nil {
				d.failed = err != nil
			}
			return produced, err
		}
	}
}
