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
// (docs/observability.md). Every label value is bounded: handler names
// and topics come from the service's wiring, the published topics are
// capped (MaxTopics).
//
// On the per-message path nothing is looked up by label: each handler's
// series are resolved once, when its hooks are built. Deliveries and
// attempts allocate nothing.
package metrics

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

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
//     waits between attempts), Prometheus's default buckets.
//
// Messages is one prometheus.Collector computing them at scrape time from
// counters kept per processor (see stats): a client_golang counter or
// histogram is one set of atomics that every core updates, and with
// several per message the cache lines bouncing between the cores were a
// tenth of the router's CPU. Two series cost nothing on the message path:
// in flight is received - Σ handled, and the successful attempts are the
// successful deliveries (a delivery succeeds with its one successful
// attempt, and every successful attempt ends its delivery so).
type Messages struct {
	received, handled, inFlight, attempts, retries, duration *prometheus.Desc

	mu       sync.Mutex
	handlers map[[2]string]*stats // by handler and topic
}

// NewMessages registers the message metrics on reg.
func NewMessages(reg prometheus.Registerer) (*Messages, error) {
	hl := []string{"handler", "topic"}
	m := &Messages{
		received: prometheus.NewDesc("eventfx_messages_received_total",
			"Deliveries of messages to a handler, redeliveries included.", hl, nil),
		handled: prometheus.NewDesc("eventfx_messages_handled_total",
			"Deliveries finished, by outcome: success, poisoned (acknowledged), failed (the poison topic could not be written) or interrupted (by shutdown); failed and interrupted messages are delivered again.",
			append(hl, "outcome"), nil),
		inFlight: prometheus.NewDesc("eventfx_messages_in_flight",
			"Deliveries being handled, backoff waits between attempts included.", hl, nil),
		attempts: prometheus.NewDesc("eventfx_handler_attempts_total",
			"Calls of the handler (attempts), by outcome: success or error.", append(hl, "outcome"), nil),
		retries: prometheus.NewDesc("eventfx_retries_total",
			"Attempts after the first of their delivery.", hl, nil),
		duration: prometheus.NewDesc("eventfx_handler_duration_seconds",
			"Duration of one attempt: the handler and the publish of the events it emits, without backoff waits.", hl, nil),
		handlers: map[[2]string]*stats{},
	}
	if err := reg.Register(m); err != nil {
		return nil, fmt.Errorf("register message metrics: %w", err)
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
// few additions to the counters of the processor they run on, and no
// allocation.
func (m *Messages) hooks(info router.HandlerInfo) router.Hooks {
	st := m.stats([2]string{info.Name, info.Topic})
	return router.Hooks{
		Received: func(*message.Message) {
			s := st.get()
			s.received.Add(1)
			st.put(s)
		},
		Delivered: func(_ *message.Message, o router.Outcome, _ int) {
			s := st.get()
			s.handled[o].Add(1)
			st.put(s)
		},
		AttemptEnded: func(_ *message.Message, attempt int, took time.Duration, err error) {
			s := st.get()
			if attempt > 1 {
				s.retries.Add(1)
			}
			if err != nil {
				s.failedAttempts.Add(1)
			}
			s.observe(took)
			st.put(s)
		},
	}
}

// stats returns the counters of one handler, the same for a handler built
// again (a router rebuilt on the same registry).
func (m *Messages) stats(labels [2]string) *stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.handlers[labels]
	if !ok {
		st = newStats()
		m.handlers[labels] = st
	}
	return st
}

func (m *Messages) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.received, m.handled, m.inFlight, m.attempts, m.retries, m.duration} {
		ch <- d
	}
}

func (m *Messages) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for labels, st := range m.handlers {
		t := st.total()
		name, topic := labels[0], labels[1]
		var handled uint64
		for o, n := range t.handled {
			handled += n
			ch <- prometheus.MustNewConstMetric(m.handled, prometheus.CounterValue, float64(n), name, topic, outcomeNames[o])
		}
		ch <- prometheus.MustNewConstMetric(m.received, prometheus.CounterValue, float64(t.received), name, topic)
		// total reads the handled counts before the received ones: a
		// delivery counts as received before it counts as handled, so
		// this is never negative.
		ch <- prometheus.MustNewConstMetric(m.inFlight, prometheus.GaugeValue, float64(t.received-handled), name, topic)
		ch <- prometheus.MustNewConstMetric(m.attempts, prometheus.CounterValue, float64(t.handled[router.Succeeded]), name, topic, AttemptSuccess)
		ch <- prometheus.MustNewConstMetric(m.attempts, prometheus.CounterValue, float64(t.failedAttempts), name, topic, AttemptError)
		ch <- prometheus.MustNewConstMetric(m.retries, prometheus.CounterValue, float64(t.retries), name, topic)
		buckets := make(map[float64]uint64, len(bounds))
		var cumulative uint64
		for i, b := range bounds {
			cumulative += t.buckets[i]
			buckets[b] = cumulative
		}
		ch <- prometheus.MustNewConstHistogram(m.duration, t.count(), time.Duration(t.sumNanos).Seconds(), buckets, name, topic)
	}
}

// bounds are the duration histogram's upper bounds in seconds, Prometheus's
// default buckets (prometheus.DefBuckets); boundNanos the same in
// nanoseconds.
var (
	bounds     = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	boundNanos = func() []int64 {
		n := make([]int64, len(bounds))
		for i, b := range bounds {
			n[i] = int64(b * 1e9)
		}
		return n
	}()
)

// counts are the counters of one handler, or one processor's share of them.
type counts struct {
	received       uint64
	handled        [len(outcomeNames)]uint64
	failedAttempts uint64
	retries        uint64
	buckets        [len(bounds) + 1]uint64 // the last: +Inf
	sumNanos       uint64
}

func (c *counts) count() uint64 {
	var n uint64
	for _, b := range c.buckets {
		n += b
	}
	return n
}

// shard is one processor's share of a handler's counters (atomic: the
// scrape reads them while they are added to). Padded so that two shards
// never share a cache line.
type shard struct {
	received       atomic.Uint64
	handled        [len(outcomeNames)]atomic.Uint64
	failedAttempts atomic.Uint64
	retries        atomic.Uint64
	buckets        [len(bounds) + 1]atomic.Uint64
	sumNanos       atomic.Uint64
	_              [64]byte
}

func (s *shard) observe(took time.Duration) {
	i := 0
	for i < len(boundNanos) && int64(took) > boundNanos[i] {
		i++
	}
	s.buckets[i].Add(1)
	s.sumNanos.Add(uint64(max(took, 0)))
}

// stats are a handler's counters, in shards. A sync.Pool hands each
// goroutine the shard of the processor it runs on (the pool is per
// processor), so the cores add to lines of their own. The pool forgets
// shards it has kept unused over two garbage collections; all keeps every
// shard for the sums, and past maxShards the pool is given existing shards
// again (shared, still correct: the additions are atomic) rather than new
// ones.
type stats struct {
	pool sync.Pool

	mu   sync.Mutex
	all  []*shard
	next int
}

func newStats() *stats {
	st := &stats{}
	st.pool.New = func() any { return st.newShard() }
	return st
}

// maxShards bounds the shards of one handler.
func maxShards() int { return 4 * runtime.GOMAXPROCS(0) }

func (st *stats) newShard() *shard {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.all) >= maxShards() {
		st.next = (st.next + 1) % len(st.all)
		return st.all[st.next]
	}
	s := &shard{}
	st.all = append(st.all, s)
	return s
}

func (st *stats) get() *shard  { return st.pool.Get().(*shard) }
func (st *stats) put(s *shard) { st.pool.Put(s) }

// total sums the shards, the handled counts of every shard before any
// received count (see Collect).
func (st *stats) total() counts {
	st.mu.Lock()
	all := st.all
	st.mu.Unlock()
	var t counts
	for _, s := range all {
		for o := range s.handled {
			t.handled[o] += s.handled[o].Load()
		}
	}
	for _, s := range all {
		t.received += s.received.Load()
		t.failedAttempts += s.failedAttempts.Load()
		t.retries += s.retries.Load()
		for i := range s.buckets {
			t.buckets[i] += s.buckets[i].Load()
		}
		t.sumNanos += s.sumNanos.Load()
	}
	return t
}
