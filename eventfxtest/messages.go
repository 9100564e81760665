package eventfxtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/transport"
)

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
