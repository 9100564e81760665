package meta

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/internal/ids"
)

// CorrelationOf is the correlation ID of ctx: the one of the message being
// handled (Correlation), else the one set with WithCorrelationID, else "".
func CorrelationOf(ctx context.Context) string {
	if msg, ok := MessageFrom(ctx); ok {
		if id := Correlation(msg); id != "" {
			return id
		}
	}
	return CorrelationIDFrom(ctx)
}

// Inherit stamps msgs, about to be published from ctx, with what they
// inherit from the message being handled (or from ctx outside a handler):
// its correlation ID and W3C trace context (traceparent, tracestate). The
// trace context is that of ctx's span when ctx has one — inside a traced
// handler its attempt span, so what it emits is that span's child — else
// the handled message's, copied as it came. Values a message already has
// are kept (a message with a traceparent keeps its trace context whole).
func Inherit(ctx context.Context, msgs ...*message.Message) {
	cid := CorrelationOf(ctx)
	traced := trace.SpanContextFromContext(ctx).IsValid()
	in, _ := MessageFrom(ctx)
	for _, m := range msgs {
		if cid != "" && m.Metadata.Get(CorrelationID) == "" {
			m.Metadata.Set(CorrelationID, cid)
		}
		if m.Metadata.Get(Traceparent) != "" {
			continue // its own trace context, kept whole
		}
		switch {
		case traced:
			own := m.Metadata.Get(Tracestate)
			propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(m.Metadata))
			if own != "" {
				m.Metadata.Set(Tracestate, own)
			}
		case in != nil:
			for _, h := range []string{Traceparent, Tracestate} {
				if v := in.Metadata.Get(h); v != "" && m.Metadata.Get(h) == "" {
					m.Metadata.Set(h, v)
				}
			}
		}
	}
}

// Marshaler is what Encode needs of a codec (handlers.Codec).
type Marshaler interface {
	Marshal(v any) ([]byte, error)
	ContentType() string
}

// TopicMarshaler is a codec whose payloads depend on their topic
// (handlers.TopicMarshaler).
type TopicMarshaler interface {
	MarshalTopic(topic string, v any) ([]byte, error)
}

// Encode builds a message from a typed event published to topic: a new
// ID, the payload (from the codec's MarshalTopic when it is a
// TopicMarshaler and topic is set, else Marshal), the codec's content
// type, what it inherits from ctx (Inherit) and, when the event has an
// EventKey method (handlers.Keyed) returning a key, that key.
func Encode(ctx context.Context, c Marshaler, topic string, v any) (*message.Message, error) {
	var payload []byte
	var err error
	if tm, ok := c.(TopicMarshaler); ok && topic != "" {
		payload, err = tm.MarshalTopic(topic, v)
	} else {
		payload, err = c.Marshal(v)
	}
	if err != nil {
		return nil, err
	}
	m := message.NewMessage(ids.New(), payload)
	m.Metadata.Set(ContentType, c.ContentType())
	Inherit(ctx, m)
	if k, ok := v.(interface{ EventKey() string }); ok && k.EventKey() != "" {
		m.Metadata.Set(Key, k.EventKey())
	}
	return m, nil
}
