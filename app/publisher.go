package app

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/ids"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/tracing"
	"github.com/eventfx/eventfx/internal/transport"
)

// Publisher is what a publisher service publishes with. Every message it
// sends has an ID, a correlation ID (from the options, else from ctx — a
// handler's or handlers.ContextWithCorrelationID's — else a new one) and, when
// given, a partition key. Publish returns once the broker acknowledged the
// write. It is safe for concurrent use.
type Publisher struct {
	pub      transport.Publisher
	codec    handlers.Codec
	poison   string
	producer tracing.Producer
}

// buildPublisher returns a Publisher over t's publisher. With a tracer
// provider tp (the service's, from TracingModule), a publish from a
// context without a span starts a trace; without one, a publish is traced
// by the provider of the span in its context, and one from a context
// without a span is not.
func buildPublisher(cfg config.Config, t transport.Transport, tp trace.TracerProvider) *Publisher {
	cfg = cfg.WithDefaults()
	p := &Publisher{pub: t.Publisher(), codec: handlers.JSON{}, poison: cfg.Poison.Topic}
	p.producer.System = t.System()
	if tp != nil {
		p.producer.Tracer = tp.Tracer(tracing.ScopeName)
	}
	return p
}

// PublishOption sets a field of a published message.
type PublishOption func(*message.Message)

// WithKey sets the partition key: messages with one key keep their order.
func WithKey(key string) PublishOption {
	return func(m *message.Message) {
		if key != "" {
			m.Metadata.Set(meta.Key, key)
		}
	}
}

// WithID sets the message ID (default: a new UUID).
func WithID(id string) PublishOption {
	return func(m *message.Message) {
		if id != "" {
			m.UUID = id
		}
	}
}

// WithCorrelationID sets the correlation ID.
func WithCorrelationID(id string) PublishOption {
	return func(m *message.Message) {
		if id != "" {
			m.Metadata.Set(meta.CorrelationID, id)
		}
	}
}

// WithHeader sets a header.
func WithHeader(name, value string) PublishOption {
	return func(m *message.Message) { m.Metadata.Set(name, value) }
}

// Publish sends payload to topic and returns the message (with its ID and
// correlation ID) once the broker acknowledged it.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte, opts ...PublishOption) (*message.Message, error) {
	m := message.NewMessage(ids.New(), payload)
	for _, o := range opts {
		o(m)
	}
	if err := p.PublishMessages(ctx, topic, m); err != nil {
		return nil, err
	}
	return m, nil
}

// PublishEvent encodes event with the Publisher's codec (JSON unless
// WithCodec chose another), adding content_type and, if the event is
// handlers.Keyed, its key, and publishes it.
func (p *Publisher) PublishEvent(ctx context.Context, topic string, event any, opts ...PublishOption) (*message.Message, error) {
	m, err := meta.Encode(ctx, p.codec, topic, event)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", event, err)
	}
	for _, o := range opts {
		o(m)
	}
	if err := p.PublishMessages(ctx, topic, m); err != nil {
		return nil, err
	}
	return m, nil
}

// PublishMessages publishes ready messages, stamping a missing ID or
// correlation ID and what they inherit from ctx: the correlation ID and
// trace context of the message being handled, if any. Each
// message is sent in a PRODUCER span "send <topic>", child of the trace
// context the message carries (ctx's span, unless it came with its own),
// and carries that span's traceparent on the wire. It refuses the poison
// topic (use `eventfx poison replay`).
func (p *Publisher) PublishMessages(ctx context.Context, topic string, msgs ...*message.Message) error {
	if err := config.ValidTopicName(topic); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if topic == p.poison {
		return fmt.Errorf("publish: topic %q is the poison topic", topic)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	meta.Inherit(ctx, msgs...)
	var generated string
	for _, m := range msgs {
		if m.UUID == "" {
			m.UUID = ids.New()
		}
		if m.Metadata.Get(meta.CorrelationID) == "" {
			if generated == "" {
				generated = ids.New()
			}
			m.Metadata.Set(meta.CorrelationID, generated)
		}
	}
	// The wait ends with ctx: messages not yet sent then fail; those
	// already sent may still land, and a retry with the same message ID
	// lets consumers recognise them.
	end := p.producer.Start(ctx, topic, msgs)
	err := p.pub.PublishContext(ctx, topic, msgs...)
	end(err)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// PublishError is the error of a Publish call in which some messages were
// not written: each one with its cause.
type PublishError = kafka.PublishError

// FailedMessage is a message a Publish call did not write, and why.
type FailedMessage = kafka.FailedMessage
