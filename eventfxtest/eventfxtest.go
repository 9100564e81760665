// Package eventfxtest runs eventfx apps inside tests: on a fresh embedded
// Kafka broker (the default) or in memory, with helpers to publish events,
// wait for a handler's effect or for messages on a topic, and assert what
// was poisoned. Every wait has a deadline and fails the test with what was
// expected, what arrived and what was poisoned meanwhile; every failure
// names the method that failed and is reported at the test's line.
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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/transport"
)

// DefaultTimeout bounds every wait unless Timeout says otherwise.
const DefaultTimeout = 20 * time.Second

// Env is one running app under test.
type Env struct {
	t       testing.TB
	cfg     config.Config
	app     *fx.App
	tr      transport.Transport
	pub     *app.Publisher
	broker  string
	timeout time.Duration
	stopped atomic.Bool
	// poison records the in-memory poison topic; nil on the broker.
	poison *poisonLog
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
// faster, but no consumer groups, partitions or offsets. Poisoned and
// NoPoison work there too; Count needs the embedded broker.
func InMemory() Option { return func(o *options) { o.memory = true } }

// Timeout replaces DefaultTimeout for the waits of this Env.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Logger replaces the default logger (which writes nothing; pass one to see
// the app's logs).
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New starts an app with the subscriber and publisher modules and the given
// options, and stops it at the end of the test. If the app cannot be built
// or started (a duplicate handler name, a missing dependency, an OnStart
// error), it fails the test at the caller's line, with the root cause
// first and fx's account of what it was building after it.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := options{timeout: DefaultTimeout, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := kafkatest.Tune(config.Config{
		Service: kafkatest.Unique("test"),
		Retry:   config.Retry{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond},
	})
	e := &Env{t: t, timeout: o.timeout}
	module := app.KafkaModule
	if o.memory {
		e.poison = &poisonLog{}
		module = fx.Provide(func(lc fx.Lifecycle, l *slog.Logger) transport.Transport { return newMemoryTransport(lc, l, e.poison) })
	} else {
		e.broker = kafkatest.Broker(t)
		cfg.Kafka.Brokers = []string{e.broker}
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.cfg = cfg.WithDefaults()
	if e.poison != nil {
		e.poison.topic = e.cfg.Poison.Topic
	}
	e.app = fx.New(
		app.Core(e.cfg),
		fx.Decorate(func() *slog.Logger { return o.logger }),
		module, app.PublisherModule, app.SubscriberModule,
		fx.Populate(&e.tr, &e.pub),
		fx.Options(o.modules...),
	)
	if err := e.app.Err(); err != nil {
		t.Fatalf("eventfxtest: New: %s", fxError(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.app.StartTimeout())
	defer cancel()
	if err := e.app.Start(ctx); err != nil {
		t.Fatalf("eventfxtest: New: start: %s", fxError(err))
	}
	t.Cleanup(func() {
		t.Helper()
		e.stop("New: stop at cleanup")
	})
	return e
}

// fxError puts the root cause of an fx error first (what the user must
// fix: a constructor's error, a missing type) and fx's chain of what was
// being built after it.
func fxError(err error) string {
	root := dig.RootCause(err)
	if root == err || root.Error() == err.Error() {
		return err.Error()
	}
	return fmt.Sprintf("%v\n\tin fx: %v", root, err)
}

// Config is the app's config (defaults applied).
func (e *Env) Config() config.Config { return e.cfg }

// Broker is the embedded broker's address ("" in memory).
func (e *Env) Broker() string { return e.broker }

// Publisher is the app's publisher.
func (e *Env) Publisher() *app.Publisher { return e.pub }

// Stop stops the app gracefully (it also happens at cleanup) and fails the
// test if it does not stop cleanly.
func (e *Env) Stop() {
	e.t.Helper()
	e.stop("Stop")
}

func (e *Env) stop(method string) {
	e.t.Helper()
	if !e.stopped.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.app.StopTimeout())
	defer cancel()
	if err := e.app.Stop(ctx); err != nil {
		e.t.Fatalf("eventfxtest: %s: %s", method, fxError(err))
	}
}

// Publish publishes event as JSON to topic and returns the message sent.
func (e *Env) Publish(topic string, event any, opts ...app.PublishOption) *message.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	m, err := e.pub.PublishEvent(ctx, topic, event, opts...)
	if err != nil {
		e.t.Fatalf("eventfxtest: Publish to %q: %v", topic, err)
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
		e.t.Fatalf("eventfxtest: PublishRaw to %q: %v", topic, err)
	}
	return m
}

// Eventually waits until cond holds. If it does not within the timeout, it
// fails the test with what and with what was poisoned meanwhile.
func (e *Env) Eventually(cond func() bool, what string) {
	e.t.Helper()
	deadline := time.Now().Add(e.timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("eventfxtest: Eventually: not within %s: %s; meanwhile %s", e.timeout, what, e.meanwhile())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Messages waits for the first n messages on topic (from its beginning)
// and returns them with their ID, payload and headers (the partition key,
// if any, under handlers.Key's header). If fewer arrive within the
// timeout, it fails the test with those that did and with what was
// poisoned meanwhile.
func (e *Env) Messages(topic string, n int) []*message.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	out, err := e.read(ctx, topic, n)
	switch {
	case err == nil:
		return out
	case !errors.Is(err, context.DeadlineExceeded):
		e.t.Fatalf("eventfxtest: Messages: %v", err)
	case topic == e.cfg.Poison.Topic:
		e.t.Fatalf("eventfxtest: Messages: want %d message(s) on the poison topic %q within %s, got %d%s",
			n, topic, e.timeout, len(out), listPoisoned(parseAll(out)))
	case len(out) == 0:
		e.t.Fatalf("eventfxtest: Messages: want %d message(s) on %q within %s, got 0; meanwhile %s",
			n, topic, e.timeout, e.meanwhile())
	default:
		e.t.Fatalf("eventfxtest: Messages: want %d message(s) on %q within %s, got %d:%s\nmeanwhile %s",
			n, topic, e.timeout, len(out), describe(out), e.meanwhile())
	}
	return nil
}

// read returns the first n messages on topic, or those that arrived and
// ctx's error.
func (e *Env) read(ctx context.Context, topic string, n int) ([]*message.Message, error) {
	if e.broker == "" {
		return e.readMemory(ctx, topic, n)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(e.broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer c.Close()
	var out []*message.Message
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, err
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fromRecord(r)) })
	}
	return out[:n], nil
}

func (e *Env) readMemory(ctx context.Context, topic string, n int) ([]*message.Message, error) {
	sub, err := e.tr.Subscriber(transport.Spec{ConsumerGroup: kafkatest.Unique("eventfxtest"), Consume: config.ConsumePartition})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %q: %w", topic, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %q: %w", topic, err)
	}
	var out []*message.Message
	for len(out) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				return out, fmt.Errorf("%q closed after %d of %d message(s)", topic, len(out), n)
			}
			m.Ack()
			out = append(out, m)
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, nil
}

// Count returns how many messages topic holds now. It needs the embedded
// broker.
func (e *Env) Count(topic string) int64 {
	e.t.Helper()
	if e.broker == "" {
		e.t.Fatalf("eventfxtest: Count needs the embedded broker (not InMemory)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	n, err := e.count(ctx, topic)
	if err != nil {
		e.t.Fatalf("eventfxtest: Count: %v", err)
	}
	return n
}

func (e *Env) count(ctx context.Context, topic string) (int64, error) {
	c, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer c.Close()
	ends, err := kadm.NewClient(c).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("end offsets of %q: %w", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n, nil
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

// Poisoned waits for the first n poisoned messages and returns them. If
// fewer are poisoned within the timeout, it fails the test with those that
// were.
func (e *Env) Poisoned(n int) []Poisoned {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	var ps []Poisoned
	var err error
	if e.poison != nil {
		ps, err = e.poison.wait(ctx, n)
	} else {
		var msgs []*message.Message
		msgs, err = e.read(ctx, e.cfg.Poison.Topic, n)
		ps = parseAll(msgs)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.t.Fatalf("eventfxtest: Poisoned: want %d poisoned message(s) within %s, got %d%s", n, e.timeout, len(ps), listPoisoned(ps))
	case err != nil:
		e.t.Fatalf("eventfxtest: Poisoned: %v", err)
	}
	return ps
}

// NoPoison fails the test, saying what was poisoned, if the poison topic
// holds anything now. Call it after Stop to include the messages still in
// flight.
func (e *Env) NoPoison() {
	e.t.Helper()
	ps, err := e.poisonedNow()
	switch {
	case err != nil:
		e.t.Fatalf("eventfxtest: NoPoison: read the poison topic: %v", err)
	case len(ps) > 0:
		e.t.Fatalf("eventfxtest: NoPoison: %s", summarize(ps))
	}
}

// poisonedNow returns what the poison topic holds now.
func (e *Env) poisonedNow() ([]Poisoned, error) {
	if e.poison != nil {
		return e.poison.all(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	n, err := e.count(ctx, e.cfg.Poison.Topic)
	if err != nil || n == 0 {
		return nil, err
	}
	msgs, err := e.read(ctx, e.cfg.Poison.Topic, int(n))
	if err != nil {
		return nil, fmt.Errorf("read %d message(s): %w", n, err)
	}
	return parseAll(msgs), nil
}

// meanwhile says, for the failure of a wait, what was poisoned.
func (e *Env) meanwhile() string {
	ps, err := e.poisonedNow()
	if err != nil {
		return fmt.Sprintf("the poison topic could not be read: %v", err)
	}
	return summarize(ps)
}

// summarize says what was poisoned: "nothing was poisoned", "1 message was
// poisoned: handler …", or "2 messages were poisoned:" and a line each.
func summarize(ps []Poisoned) string {
	switch len(ps) {
	case 0:
		return "nothing was poisoned"
	case 1:
		return "1 message was poisoned: " + ps[0].String()
	}
	return fmt.Sprintf("%d messages were poisoned%s", len(ps), listPoisoned(ps))
}

func listPoisoned(ps []Poisoned) string {
	var b strings.Builder
	for i, p := range ps {
		if i == 0 {
			b.WriteString(":")
		}
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// String says which handler gave up on the message, on which topic, why
// and after how many attempts.
func (p Poisoned) String() string {
	attempts := "attempts unknown"
	switch {
	case p.Attempts == 1:
		attempts = "1 attempt"
	case p.Attempts > 1:
		attempts = fmt.Sprintf("%d attempts", p.Attempts)
	}
	return fmt.Sprintf("handler %q on %q: %s (%s)", p.Handler, p.Topic, p.Reason, attempts)
}

func parseAll(msgs []*message.Message) []Poisoned {
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

// memoryTransport is the in-memory transport with a publisher that records
// what it publishes to the poison topic: the in-memory topics are gone once
// the app stops, and NoPoison is often called after Stop.
type memoryTransport struct {
	transport.Transport
	pub message.Publisher
}

func newMemoryTransport(lc fx.Lifecycle, l *slog.Logger, log *poisonLog) transport.Transport {
	m := transport.NewMemory(l)
	lc.Append(fx.Hook{OnStop: func(context.Context) error { return m.Close() }})
	return memoryTransport{Transport: m, pub: recordingPublisher{Publisher: m.Publisher(), log: log}}
}

func (t memoryTransport) Publisher() message.Publisher { return t.pub }

type recordingPublisher struct {
	message.Publisher
	log *poisonLog
}

func (p recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	if topic == p.log.topic {
		p.log.add(msgs)
	}
	return nil
}

// poisonLog is what the in-memory poison topic was sent, in order. It is
// safe for concurrent use.
type poisonLog struct {
	topic string
	mu    sync.Mutex
	msgs  []*message.Message
}

func (l *poisonLog) add(msgs []*message.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		l.msgs = append(l.msgs, m.Copy())
	}
}

func (l *poisonLog) all() []Poisoned {
	l.mu.Lock()
	defer l.mu.Unlock()
	return parseAll(l.msgs)
}

// wait returns the first n poisoned messages, or those there are and ctx's
// error.
func (l *poisonLog) wait(ctx context.Context, n int) ([]Poisoned, error) {
	for {
		ps := l.all()
		if len(ps) >= n {
			return ps[:n], nil
		}
		select {
		case <-ctx.Done():
			return ps, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Decode unmarshals a message's JSON payload into v, failing the test.
func Decode[T any](t testing.TB, m *message.Message) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Payload, &v); err != nil {
		t.Fatalf("eventfxtest: Decode: message %s as %T: %v (payload %q)", m.UUID, v, err, m.Payload)
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
