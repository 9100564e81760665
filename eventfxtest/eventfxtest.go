// Package eventfxtest runs eventfx apps inside tests: on a fresh embedded
// Kafka broker (the default) or in memory, with helpers to publish events,
// wait for a handler's effect or for messages on a topic, and assert what
// was poisoned. Every wait has a deadline and fails the test with what was
// expected and what arrived.
//
//	func TestBilling(t *testing.T) {
//		env := eventfxtest.New(t, eventfxtest.Modules(billing.Module))
//		env.Publish("orders", OrderPlaced{ID: "o1", Amount: 5})
//		paid := env.Messages("payments", 1)
//		...
//		env.NoPoison()
//	}
package eventfxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/router"
)

// DefaultTimeout bounds every wait unless Timeout says otherwise.
const DefaultTimeout = 20 * time.Second

// Env is one running app under test.
type Env struct {
	t         testing.TB
	cfg       config.Config
	app       *fxtest.App
	transport app.Transport
	pub       *app.Publisher
	broker    string
	timeout   time.Duration
	stopped   atomic.Bool
}

// Option configures New.
type Option func(*options)

type options struct {
	memory  bool
	modules []fx.Option
	config  func(*config.Config)
	timeout time.Duration
	logger  *slog.Logger
}

// Modules adds fx options: handlers.Register(...), your own modules.
func Modules(opts ...fx.Option) Option {
	return func(o *options) { o.modules = append(o.modules, opts...) }
}

// Config edits the test config (a fresh service name and poison topic,
// short retry delays and group timings) before the app starts.
func Config(edit func(*config.Config)) Option { return func(o *options) { o.config = edit } }

// InMemory runs on the in-memory transport instead of the embedded broker:
// faster, but no consumer groups, partitions or offsets.
func InMemory() Option { return func(o *options) { o.memory = true } }

// Timeout replaces DefaultTimeout for the waits of this Env.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Logger replaces the default logger (which writes nothing; pass one to see
// the app's logs).
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// New starts an app with the subscriber and publisher modules and the given
// options, and stops it at the end of the test.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := options{timeout: DefaultTimeout, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := config.Config{
		Service: unique("test"),
		Kafka: config.Kafka{
			SessionTimeout:    2 * time.Second,
			HeartbeatInterval: 200 * time.Millisecond,
			RebalanceTimeout:  2 * time.Second,
			CommitInterval:    100 * time.Millisecond,
		},
		Retry:           config.Retry{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond},
		Poison:          config.Poison{Topic: unique("poison")},
		ShutdownTimeout: 10 * time.Second,
	}
	e := &Env{t: t, timeout: o.timeout}
	transport := app.KafkaModule
	if o.memory {
		transport = app.MemoryModule
	} else {
		b, err := broker.Start(broker.Config{Partitions: 4})
		if err != nil {
			t.Fatalf("eventfxtest: start embedded broker: %v", err)
		}
		t.Cleanup(b.Close)
		e.broker = b.Addr()
		cfg.Kafka.Brokers = []string{b.Addr()}
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.cfg = cfg.WithDefaults()
	e.app = fxtest.New(t,
		app.Core(e.cfg),
		fx.Decorate(func() *slog.Logger { return o.logger }),
		transport, app.PublisherModule, app.SubscriberModule,
		fx.Populate(&e.transport, &e.pub),
		fx.Options(o.modules...),
	)
	e.app.RequireStart()
	t.Cleanup(e.Stop)
	return e
}

// Config is the app's config (defaults applied).
func (e *Env) Config() config.Config { return e.cfg }

// Broker is the embedded broker's address ("" in memory).
func (e *Env) Broker() string { return e.broker }

// Publisher is the app's publisher.
func (e *Env) Publisher() *app.Publisher { return e.pub }

// Stop stops the app gracefully (it also happens at cleanup).
func (e *Env) Stop() {
	if e.stopped.CompareAndSwap(false, true) {
		e.app.RequireStop()
	}
}

// Publish publishes event as JSON to topic and returns the message sent.
func (e *Env) Publish(topic string, event any, opts ...app.PublishOption) *message.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	m, err := e.pub.PublishEvent(ctx, topic, event, opts...)
	if err != nil {
		e.t.Fatalf("eventfxtest: publish to %s: %v", topic, err)
	}
	return m
}

// PublishRaw publishes payload bytes to topic.
func (e *Env) PublishRaw(topic string, payload []byte, opts ...app.PublishOption) *message.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	m, err := e.pub.Publish(ctx, topic, payload, opts...)
	if err != nil {
		e.t.Fatalf("eventfxtest: publish to %s: %v", topic, err)
	}
	return m
}

// Eventually waits until cond holds, failing with what() otherwise.
func (e *Env) Eventually(cond func() bool, what string) {
	e.t.Helper()
	deadline := time.Now().Add(e.timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("eventfxtest: not within %s: %s", e.timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Messages waits for the first n messages on topic (from its beginning)
// and returns them with their ID, payload and headers (the partition key,
// if any, under handlers.Key's header). It fails the test if fewer arrive.
func (e *Env) Messages(topic string, n int) []*message.Message {
	e.t.Helper()
	if e.broker == "" {
		return e.memoryMessages(topic, n)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(e.broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		e.t.Fatalf("eventfxtest: kafka client: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	var out []*message.Message
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("eventfxtest: topic %s: want %d messages within %s, got %d:%s", topic, n, e.timeout, len(out), describe(out))
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fromRecord(r)) })
	}
	return out
}

func (e *Env) memoryMessages(topic string, n int) []*message.Message {
	sub, err := e.transport.Subscriber(router.SubscriberSpec{ConsumerGroup: unique("eventfxtest"), Consume: config.ConsumePartition})
	if err != nil {
		e.t.Fatalf("eventfxtest: subscribe %s: %v", topic, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		e.t.Fatalf("eventfxtest: subscribe %s: %v", topic, err)
	}
	var out []*message.Message
	for len(out) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				e.t.Fatalf("eventfxtest: topic %s closed after %d of %d messages", topic, len(out), n)
			}
			m.Ack()
			out = append(out, m)
		case <-ctx.Done():
			e.t.Fatalf("eventfxtest: topic %s: want %d messages within %s, got %d:%s", topic, n, e.timeout, len(out), describe(out))
		}
	}
	return out
}

// Count returns how many messages topic holds now (Kafka only).
func (e *Env) Count(topic string) int64 {
	e.t.Helper()
	if e.broker == "" {
		e.t.Fatalf("eventfxtest: Count needs the embedded broker")
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		e.t.Fatalf("eventfxtest: kafka client: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	ends, err := kadm.NewClient(c).ListEndOffsets(ctx, topic)
	if err != nil {
		e.t.Fatalf("eventfxtest: end offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// Poisoned is a message found on the poison topic, with what its poison
// headers say.
type Poisoned struct {
	*message.Message
	// Reason is the handler's final error.
	Reason string
	// Topic is the topic the message was consumed from.
	Topic string
	// Handler is the handler that gave up on it.
	Handler string
	// Attempts is how many times the handler tried it; 0 when the header
	// is missing or not a number.
	Attempts int
}

// Poisoned waits for the first n poisoned messages and returns them.
func (e *Env) Poisoned(n int) []Poisoned {
	e.t.Helper()
	msgs := e.Messages(e.cfg.Poison.Topic, n)
	out := make([]Poisoned, len(msgs))
	for i, m := range msgs {
		out[i] = parsePoisoned(m)
	}
	return out
}

// parsePoisoned reads a poison record's headers as `eventfx poison list`
// does (poison.Parse), whichever transport carried it.
func parsePoisoned(m *message.Message) Poisoned {
	r := &kgo.Record{Value: m.Payload}
	for k, v := range m.Metadata {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	p := poison.Parse(r)
	return Poisoned{Message: m, Reason: p.Reason, Topic: p.Topic, Handler: p.Handler, Attempts: p.Attempts}
}

// NoPoison fails the test if anything was poisoned (Kafka only: the
// poison topic is empty).
func (e *Env) NoPoison() {
	e.t.Helper()
	if n := e.Count(e.cfg.Poison.Topic); n != 0 {
		e.t.Fatalf("eventfxtest: %d message(s) poisoned:%s", n, describe(e.Messages(e.cfg.Poison.Topic, int(n))))
	}
}

// Decode unmarshals a message's JSON payload into v, failing the test.
func Decode[T any](t testing.TB, m *message.Message) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Payload, &v); err != nil {
		t.Fatalf("eventfxtest: decode message %s as %T: %v (payload %q)", m.UUID, v, err, m.Payload)
	}
	return v
}

func fromRecord(r *kgo.Record) *message.Message {
	m := message.NewMessage("", r.Value)
	for _, h := range r.Headers {
		if h.Key == kafka.UUIDHeaderKey {
			m.UUID = string(h.Value)
			continue
		}
		m.Metadata.Set(h.Key, string(h.Value))
	}
	if m.UUID == "" {
		m.UUID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	if len(r.Key) > 0 {
		m.Metadata.Set(meta.Key, string(r.Key))
	}
	return m
}

func describe(msgs []*message.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "\n  %s %q %v", m.UUID, m.Payload, m.Metadata)
	}
	return b.String()
}

// Key returns a message's partition key ("" when none).
func Key(m *message.Message) string { return m.Metadata.Get(meta.Key) }
