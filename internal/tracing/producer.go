package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/internal/meta"
)

// producerKind is the start option of every producer span.
var producerKind = trace.WithSpanKind(trace.SpanKindProducer)

// Producer traces publishes: a PRODUCER span "send <topic>" per message.
// The zero value is ready to use.
type Producer struct {
	// Tracer starts the spans. Nil: a tracer of the provider of the span
	// in the publish's context (OpenTelemetry's trace.Span.TracerProvider),
	// so a publish from a traced handler or request is traced by that
	// handler's or request's provider, and one from a context without a
	// span records nothing (its messages keep their trace context).
	Tracer trace.Tracer
	// System is messaging.system ("kafka"); empty: left out.
	System string
}

// Send runs send, the publish of msgs to topic, inside one span per
// message (see Start). It returns send's error.
func (p Producer) Send(ctx context.Context, topic string, msgs []*message.Message, send func() error) error {
	end := p.Start(ctx, topic, msgs)
	err := send()
	end(err)
	return err
}

// Start starts the spans of a publish of msgs to topic, one per message,
// and returns the function that ends them with the publish's error. A
// span's parent is the trace context its message carries
// (meta.Inherit stamps the publisher's), else ctx's span; the span's
// own context then replaces the message's traceparent and tracestate, so
// the consumer's span is the child of the producer's.
func (p Producer) Start(ctx context.Context, topic string, msgs []*message.Message) (end func(error)) {
	tracer := p.Tracer
	if tracer == nil {
		tracer = trace.SpanFromContext(ctx).TracerProvider().Tracer(ScopeName)
	}
	name := "send " + topic
	spans := make([]trace.Span, len(msgs))
	for i, m := range msgs {
		parent := Extract(ctx, m.Metadata)
		sctx, span := tracer.Start(parent, name, producerKind)
		if span.IsRecording() {
			span.SetAttributes(p.attributes(topic, m)...)
		}
		// A no-op span carries its parent's context: nothing to rewrite.
		if sc := span.SpanContext(); !sc.Equal(trace.SpanContextFromContext(parent)) {
			Inject(sctx, m.Metadata)
		}
		spans[i] = span
	}
	return func(err error) {
		for _, s := range spans {
			End(s, err)
		}
	}
}

// attributes of the span that sends m.
func (p Producer) attributes(topic string, m *message.Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(topic),
		semconv.MessagingMessageID(m.UUID),
		AttrCorrelationID.String(m.Metadata.Get(meta.CorrelationID)),
	}
	if p.System != "" {
		attrs = append(attrs, semconv.MessagingSystemKey.String(p.System))
		if key := m.Metadata.Get(meta.Key); key != "" && p.System == "kafka" {
			attrs = append(attrs, semconv.MessagingKafkaMessageKey(key))
		}
	}
	return attrs
}

// Publisher returns next traced as Send does. Its Publish has no context:
// each span's parent is the trace context its message carries. Close
// closes next.
func (p Producer) Publisher(next message.Publisher) message.Publisher {
	return tracedPublisher{p: p, next: next}
}

type tracedPublisher struct {
	p    Producer
	next message.Publisher
}

func (t tracedPublisher) Publish(topic string, msgs ...*message.Message) error {
	return t.p.Send(context.Background(), topic, msgs, func() error { return t.next.Publish(topic, msgs...) })
}

func (t tracedPublisher) Close() error { return t.next.Close() }
