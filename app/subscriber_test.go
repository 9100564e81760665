package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/routing"
)

const waitFor = 20 * time.Second

// Order is the typed event of these tests.
type Order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// calls counts handler invocations per message ID.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
	return c.n[id]
}

func (c *calls) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// startSubscriber starts a subscriber app with hs; it is stopped at cleanup
// unless the test stops it first.
func startSubscriber(t *testing.T, cfg config.Config, hs ...handlers.Handler) *fxtest.App {
	t.Helper()
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, handlers.Register(hs...))
	a.RequireStart()
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { a.RequireStop() }) })
	return a
}

// record builds a record the way eventfx writes one.
func record(topic, id, correlationID string, payload string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: []byte(payload)}
	if id != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "_watermill_message_uuid", Value: []byte(id)})
	}
	if correlationID != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "correlation_id", Value: []byte(correlationID)})
	}
	return r
}

func TestHandlerFailingTwiceThenSucceedingIsCalledThreeTimes(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	var c calls
	done := make(chan struct{})
	startSubscriber(t, cfg, handlers.New("flaky", topic, func(ctx context.Context, o Order) error {
		if c.add(handlers.MessageID(ctx)) < 3 {
			return errors.New("database busy")
		}
		close(done)
		return nil
	}))

	kafkatest.Produce(t, addr, record(topic, "m1", "c1", `{"id":"o1","amount":5}`))
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatalf("handler did not succeed; calls so far: %d", c.get("m1"))
	}
	kafkatest.Eventually(t, waitFor, func() bool { return kafkatest.Committed(t, addr, routing.ConsumerGroup(cfg, "flaky"), topic) == 1 },
		func() string { return "offset of the handled message not committed" })
	assert.Equal(t, 3, c.get("m1"), "calls")
	assert.Zero(t, kafkatest.Count(t, addr, cfg.Poison.Topic), "records on the poison topic")
}

func TestAlwaysFailingHandlerIsPoisonedAfterMaxRetriesAndCommitted(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	var c calls
	failing := handlers.New("always-fails", topic, func(ctx context.Context, o Order) error {
		c.add(handlers.MessageID(ctx))
		if o.ID == "sentinel" {
			return nil
		}
		return fmt.Errorf("payment gateway down for order %s", o.ID)
	})
	a := startSubscriber(t, cfg, failing)

	kafkatest.Produce(t, addr, record(topic, "m-fail", "corr-1", `{"id":"o7","amount":5}`))
	poisoned := kafkatest.Read(t, addr, cfg.Poison.Topic, 1, waitFor)[0]

	assert.Equal(t, cfg.Retry.MaxRetries+1, c.get("m-fail"), "calls: max_retries + 1")
	assert.Equal(t, `{"id":"o7","amount":5}`, string(poisoned.Value), "payload")
	h := kafkatest.Headers(poisoned)
	group := routing.ConsumerGroup(cfg, "always-fails")
	assert.Equal(t, "m-fail", h["_watermill_message_uuid"])
	assert.Equal(t, "corr-1", h["correlation_id"])
	assert.Equal(t, "payment gateway down for order o7", h["reason_poisoned"])
	assert.Equal(t, topic, h["topic_poisoned"])
	assert.Equal(t, "always-fails", h["handler_poisoned"])
	assert.Equal(t, group, h["subscriber_poisoned"])
	assert.Equal(t, strconv.Itoa(cfg.Retry.MaxRetries+1), h["eventfx_attempts"])
	assert.Equal(t, group, h["eventfx_consumer_group"])
	assert.Equal(t, "0", h["eventfx_original_offset"])
	assert.Contains(t, []string{"0", "1", "2", "3"}, h["eventfx_original_partition"])
	at, err := time.Parse(time.RFC3339, h["eventfx_poisoned_at"])
	require.NoError(t, err, "eventfx_poisoned_at is RFC 3339")
	assert.WithinDuration(t, time.Now(), at, time.Minute)

	a.RequireStop()
	assert.Equal(t, int64(1), kafkatest.Committed(t, addr, group, topic), "poisoned message's offset committed")

	// A restarted subscriber in the same group does not see it again.
	sentinel := make(chan struct{})
	startSubscriber(t, cfg, handlers.New("always-fails", topic, func(ctx context.Context, o Order) error {
		c.add(handlers.MessageID(ctx))
		if o.ID == "sentinel" {
			close(sentinel)
		}
		return nil
	}))
	kafkatest.Produce(t, addr, record(topic, "m-sentinel", "", `{"id":"sentinel"}`))
	select {
	case <-sentinel:
	case <-time.After(waitFor):
		t.Fatal("restarted subscriber did not receive the next message")
	}
	assert.Equal(t, cfg.Retry.MaxRetries+1, c.get("m-fail"), "poisoned message redelivered after restart")
}

func TestPermanentErrorsArePoisonedAfterOneAttempt(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		reason  string
	}{
		{"handler marks permanent", `{"id":"o1","amount":5}`, "order o1 refers to an unknown customer"},
		{"malformed JSON", `{"id": "o2", amount}`, "decode app_test.ValidOrder: invalid character 'a' looking for beginning of object key string"},
		{"validation fails", `{"id":"o3","amount":-4}`, "invalid app_test.ValidOrder: amount must be positive, got -4"},
		{"wrong field type", `{"id":"o4","amount":"four"}`, "decode app_test.ValidOrder: json: cannot unmarshal string into Go struct field ValidOrder.amount of type int"},
	}
	addr := kafkatest.Broker(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafkatest.Config(addr)
			topic := kafkatest.Unique("orders")
			var c calls
			startSubscriber(t, cfg, handlers.New("strict", topic, func(ctx context.Context, o ValidOrder) error {
				c.add(handlers.MessageID(ctx))
				return handlers.Permanent(fmt.Errorf("order %s refers to an unknown customer", o.ID))
			}))
			kafkatest.Produce(t, addr, record(topic, "m1", "", tt.payload))
			poisoned := kafkatest.Read(t, addr, cfg.Poison.Topic, 1, waitFor)[0]
			h := kafkatest.Headers(poisoned)
			assert.Equal(t, tt.reason, h["reason_poisoned"])
			assert.Equal(t, "1", h["eventfx_attempts"])
			assert.LessOrEqual(t, c.get("m1"), 1, "handler calls")
		})
	}
}

// ValidOrder validates itself after decoding.
type ValidOrder Order

func (o ValidOrder) Validate() error {
	if o.Amount <= 0 {
		return fmt.Errorf("amount must be positive, got %d", o.Amount)
	}
	return nil
}

func TestPanicIsRecoveredRetriedThenPoisonedAndServiceKeepsRunning(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	var c calls
	ok := make(chan struct{})
	startSubscriber(t, cfg, handlers.New("panicky", topic, func(ctx context.Context, o Order) error {
		c.add(handlers.MessageID(ctx))
		if o.ID == "boom" {
			panic("nil map\nassignment")
		}
		close(ok)
		return nil
	}))
	kafkatest.Produce(t, addr, record(topic, "m-boom", "", `{"id":"boom"}`))
	poisoned := kafkatest.Read(t, addr, cfg.Poison.Topic, 1, waitFor)[0]
	h := kafkatest.Headers(poisoned)
	assert.Equal(t, "panic: nil map assignment", h["reason_poisoned"], "one-line reason")
	assert.Equal(t, strconv.Itoa(cfg.Retry.MaxRetries+1), h["eventfx_attempts"])
	assert.Equal(t, cfg.Retry.MaxRetries+1, c.get("m-boom"))

	kafkatest.Produce(t, addr, record(topic, "m-ok", "", `{"id":"fine"}`))
	select {
	case <-ok:
	case <-time.After(waitFor):
		t.Fatal("service stopped handling messages after a panic")
	}
}

// Payment is emitted by the billing handler.
type Payment struct {
	OrderID string `json:"order_id"`
}

func (p Payment) EventKey() string { return p.OrderID }

func TestCorrelationIDIsKeptCopiedOntoEmittedEventsOrGenerated(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
	seen := make(chan string, 2)
	startSubscriber(t, cfg, handlers.NewEmitting("billing", orders, payments, func(ctx context.Context, o Order) ([]Payment, error) {
		seen <- handlers.CorrelationID(ctx)
		return []Payment{{OrderID: o.ID}}, nil
	}))

	kafkatest.Produce(t, addr, record(orders, "m1", "corr-kept", `{"id":"o1"}`))
	kafkatest.Produce(t, addr, record(orders, "m2", "", `{"id":"o2"}`))
	out := kafkatest.Read(t, addr, payments, 2, waitFor)

	byOrder := map[string]map[string]string{}
	for _, r := range out {
		byOrder[string(r.Key)] = kafkatest.Headers(r)
	}
	require.Contains(t, byOrder, "o1", "emitted event keyed by order: %s", kafkatest.Describe(out))
	require.Contains(t, byOrder, "o2", "emitted event keyed by order: %s", kafkatest.Describe(out))
	assert.Equal(t, "corr-kept", byOrder["o1"]["correlation_id"], "kept and copied")
	generated := byOrder["o2"]["correlation_id"]
	assert.NotEmpty(t, generated, "generated when missing")
	assert.NotEqual(t, "corr-kept", generated)
	assert.NotEmpty(t, byOrder["o1"]["_watermill_message_uuid"], "emitted event has its own ID")
	assert.NotEqual(t, "m1", byOrder["o1"]["_watermill_message_uuid"])
	assert.ElementsMatch(t, []string{"corr-kept", generated}, []string{<-seen, <-seen}, "IDs seen by the handler")
}

func TestGracefulStopWaitsForInFlightHandlerAndCommits(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	started, release := make(chan struct{}), make(chan struct{})
	var finished, stopped time.Time
	var c calls
	a := startSubscriber(t, cfg, handlers.New("slow", topic, func(ctx context.Context, o Order) error {
		c.add(handlers.MessageID(ctx))
		close(started)
		<-release
		finished = time.Now()
		return ctx.Err()
	}))
	kafkatest.Produce(t, addr, record(topic, "m1", "", `{"id":"o1"}`))
	select {
	case <-started:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}

	stopErr := make(chan error, 1)
	go func() {
		err := a.Stop(context.Background())
		stopped = time.Now()
		stopErr <- err
	}()
	select {
	case err := <-stopErr:
		t.Fatalf("Stop returned (%v) while a handler was in flight", err)
	case <-time.After(300 * time.Millisecond): // Stop must still be waiting; a wrong early return shows up here
	}
	close(release)
	require.NoError(t, <-stopErr)
	assert.True(t, !stopped.Before(finished), "stop returned before the in-flight handler finished")
	assert.Equal(t, int64(1), kafkatest.Committed(t, addr, routing.ConsumerGroup(cfg, "slow"), topic), "in-flight message committed at stop")
	assert.Zero(t, kafkatest.Count(t, addr, cfg.Poison.Topic), "nothing poisoned by shutdown")
	assert.Equal(t, 1, c.get("m1"))
}

func TestDuplicateHandlerNamesFailFxNew(t *testing.T) {
	cfg := config.Config{}.WithDefaults()
	noop := func(context.Context, Order) error { return nil }
	a := fx.New(app.Core(cfg), app.MemoryModule, app.SubscriberModule, fx.NopLogger,
		handlers.Register(handlers.New("same", "a", noop), handlers.New("same", "b", noop)))
	err := a.Err()
	require.Error(t, err)
	// fx's value group gives the handlers in no set order.
	assert.Regexp(t, `handler name "same" is used twice: on topic "(a" and on topic "b|b" and on topic "a)"`, err.Error())
}

func TestMessageInterruptedByShutdownIsRedeliveredNotPoisoned(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	cfg.ShutdownTimeout = 300 * time.Millisecond
	cfg.Retry = config.Retry{MaxRetries: 100, InitialInterval: time.Minute, MaxInterval: time.Minute, AttemptTimeout: time.Minute}
	topic := kafkatest.Unique("orders")
	var c calls
	first := make(chan struct{})
	a := startSubscriber(t, cfg, handlers.New("stuck", topic, func(ctx context.Context, o Order) error {
		if c.add(handlers.MessageID(ctx)) == 1 {
			close(first)
		}
		return errors.New("downstream unavailable") // retried after a minute
	}))
	kafkatest.Produce(t, addr, record(topic, "m1", "", `{"id":"o1"}`))
	select {
	case <-first:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}
	a.RequireStop() // the drain gives up after 300ms; the retry is cancelled

	assert.Zero(t, kafkatest.Count(t, addr, cfg.Poison.Topic), "a message interrupted by shutdown must not be poisoned")
	assert.Zero(t, kafkatest.Committed(t, addr, routing.ConsumerGroup(cfg, "stuck"), topic), "offset of the interrupted message must not be committed")

	again := make(chan string, 1)
	startSubscriber(t, cfg, handlers.New("stuck", topic, func(ctx context.Context, o Order) error {
		again <- handlers.MessageID(ctx)
		return nil
	}))
	select {
	case id := <-again:
		assert.Equal(t, "m1", id)
	case <-time.After(waitFor):
		t.Fatal("interrupted message not delivered again after restart")
	}
}

func TestRetryAttemptTimeoutThenSuccess(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	attempts := make(chan int, 5)
	startSubscriber(t, cfg, handlers.New("slow-first", topic, func(ctx context.Context, o Order) error {
		attempts <- handlers.Attempt(ctx)
		if handlers.Attempt(ctx) == 1 {
			<-ctx.Done() // the per-attempt timeout cancels this attempt
			return ctx.Err()
		}
		return ctx.Err() // a retry must start with a live context
	}, handlers.WithRetry(config.Retry{AttemptTimeout: 50 * time.Millisecond})))
	kafkatest.Produce(t, addr, record(topic, "m1", "", `{"id":"o1"}`))
	kafkatest.Eventually(t, waitFor, func() bool { return kafkatest.Committed(t, addr, routing.ConsumerGroup(cfg, "slow-first"), topic) == 1 },
		func() string { return "message not handled" })
	assert.Equal(t, []int{1, 2}, []int{<-attempts, <-attempts})
	assert.Zero(t, kafkatest.Count(t, addr, cfg.Poison.Topic))
}

func TestEmittedEventTooLargeIsPoisonedNotResentForever(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
	var c calls
	a := startSubscriber(t, cfg, handlers.NewEmitting("billing", orders, payments, func(ctx context.Context, o Order) ([]Payment, error) {
		c.add(handlers.MessageID(ctx))
		return []Payment{{OrderID: strings.Repeat("x", 3<<20)}}, nil // over the broker's message.max.bytes
	}))
	kafkatest.Produce(t, addr, record(orders, "m1", "c1", `{"id":"o1"}`))
	h := kafkatest.Headers(kafkatest.Read(t, addr, cfg.Poison.Topic, 1, waitFor)[0])
	assert.Contains(t, h["reason_poisoned"], "publish 1 emitted message(s) to "+payments)
	assert.Equal(t, "1", h["eventfx_attempts"], "a message too large is a permanent failure")
	a.RequireStop()
	assert.Equal(t, 1, c.get("m1"), "handler calls")
	assert.Zero(t, kafkatest.Count(t, addr, payments))
}

func TestTraceContextAndCorrelationIDReachEverythingAHandlerPublishes(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	in, typedOut, rawOut := kafkatest.Unique("in"), kafkatest.Unique("typed"), kafkatest.Unique("raw")
	var pub *app.Publisher
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, app.SubscriberModule, fx.Populate(&pub),
		handlers.Register(handlers.NewEmitting("typed", in, typedOut, func(ctx context.Context, o Order) ([]Payment, error) {
			return []Payment{{OrderID: o.ID}}, nil
		})),
		fx.Provide(handlers.AsHandler(func(p *app.Publisher) handlers.Handler {
			return handlers.Handler{Name: "raw", Topic: in, Func: func(msg *message.Message) ([]*message.Message, error) {
				_, err := p.Publish(msg.Context(), rawOut, []byte("audit"))
				return nil, err
			}}
		})),
	)
	a.RequireStart()
	defer a.RequireStop()

	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := record(in, "m1", "corr-1", `{"id":"o1"}`)
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(traceparent)})
	kafkatest.Produce(t, addr, r)

	for _, topic := range []string{typedOut, rawOut} {
		h := kafkatest.Headers(kafkatest.Read(t, addr, topic, 1, waitFor)[0])
		assert.Equal(t, "corr-1", h["correlation_id"], topic)
		assert.Equal(t, traceparent, h["traceparent"], topic)
	}
}

func TestLogLinesAboutARetriedMessageCarryTheFiveKeys(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	cfg.Observability.Log = config.Log{Level: config.LogDebug, Format: config.LogJSON}
	topic := kafkatest.Unique("orders")
	var buf kafkatest.Buffer
	var c calls
	done := make(chan struct{})
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule,
		fx.Decorate(func() *slog.Logger {
			return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}),
		handlers.Register(handlers.New("flaky", topic, func(ctx context.Context, o Order) error {
			if c.add(handlers.MessageID(ctx)) == 1 {
				return errors.New("first try fails")
			}
			close(done)
			return nil
		})))
	a.RequireStart()
	kafkatest.Produce(t, addr, record(topic, "m-logged", "corr-logged", `{"id":"o1"}`))
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("handler did not succeed")
	}
	a.RequireStop()

	var lines []map[string]any
	for _, l := range strings.Split(buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message_id"] == "m-logged" {
			lines = append(lines, m)
		}
	}
	require.NotEmpty(t, lines, "no log line about the message in:\n%s", buf.String())
	msgs := map[string]bool{}
	for _, l := range lines {
		msgs[l["msg"].(string)] = true
		for _, key := range []string{"message_id", "correlation_id", "handler", "topic", "attempt"} {
			assert.Contains(t, l, key, "line %v", l)
		}
		assert.Equal(t, "corr-logged", l["correlation_id"])
	}
	assert.True(t, msgs["handler failed, retrying"], "the retry is logged: %v", msgs)
	assert.True(t, msgs["message handled"], "the result is logged: %v", msgs)
}

// A subscriber with no handlers says so at start: a handler constructor
// provided without handlers.AsHandler is a value fx never asks for.
func TestSubscriberWithoutHandlersWarns(t *testing.T) {
	t.Parallel()
	cfg := kafkatest.Config(kafkatest.Broker(t))
	var buf kafkatest.Buffer
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule,
		fx.Decorate(func() *slog.Logger { return slog.New(slog.NewTextHandler(&buf, nil)) }),
		fx.Provide(func() handlers.Handler { // not in the handlers group
			return handlers.New("billing", "orders", func(context.Context, Order) error { return nil })
		}),
	)
	a.RequireStart()
	a.RequireStop()
	assert.Contains(t, buf.String(), "no handlers registered")
	assert.Contains(t, buf.String(), "handlers.AsHandler")
}
