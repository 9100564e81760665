package tracing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/router"
)

// Span attributes of eventfx's own; the messaging.*, http.* and url.*
// attributes follow OpenTelemetry's semantic conventions.
const (
	// AttrCorrelationID is on every span eventfx starts for a message or
	// a request: the correlation ID of the design's wire format.
	AttrCorrelationID = attribute.Key("eventfx.correlation_id")
	// AttrHandler is the handler (router handler, subscriber route) name.
	AttrHandler = attribute.Key("eventfx.handler")
	// AttrAttempt is the 1-based attempt number within one delivery.
	AttrAttempt = attribute.Key("eventfx.attempt")
)

// Observer traces every attempt of a handler as a CONSUMER span "process
// <topic>" whose parent is the trace context the message carries (the
// span of its producer, or a caller's), with the messaging attributes of
// the message and eventfx.handler, eventfx.attempt and
// eventfx.correlation_id. A failed attempt's span records the error and has
// status Error. The span is in the handler's context (msg.Context()), so
// what the handler publishes or calls — events it emits (meta.Inherit),
// webhook calls — are its children. With a no-op provider nothing is
// recorded and the message's trace context is what the handler's context
// carries, unchanged.
func Observer(tp trace.TracerProvider) router.Observer {
	tracer := tp.Tracer(ScopeName)
	rec := recording(tp)
	return func(info router.HandlerInfo) router.Hooks {
		hooks := router.Hooks{
			// Each emitted event gets its producer span, child of the attempt.
			Publish: func(pub message.Publisher) message.Publisher {
				return Producer{Tracer: tracer}.Publisher(pub)
			},
		}
		if rec {
			hooks.AttemptStarted, hooks.AttemptEnded = spans(tracer, info)
		} else {
			hooks.Context = propagate
		}
		return hooks
	}
}

// recording reports whether tp may record spans: false for exporter none.
func recording(tp trace.TracerProvider) bool {
	switch p := tp.(type) {
	case *Provider:
		return p.Recording()
	case noop.TracerProvider:
		return false
	}
	return true
}

// propagate is the delivery's lazy context when nothing is recorded: it
// only puts the message's trace context, if it carries one, in the
// handler's context (for what the handler emits and calls), the first time
// a value is looked up there. A message without a traceparent costs a map
// lookup: no parsing, no context, no span; a handler that looks nothing up
// costs nothing.
func propagate(ctx context.Context, msg *message.Message) context.Context {
	if msg.Metadata.Get(meta.Traceparent) != "" {
		return Extract(ctx, msg.Metadata)
	}
	return ctx
}

// spans returns the hooks that make each attempt of one handler a span.
func spans(tracer trace.Tracer, info router.HandlerInfo) (start func(*message.Message, int), end func(*message.Message, int, time.Duration, error)) {
	name := "process " + info.Topic
	static := []attribute.KeyValue{
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(info.Topic),
		AttrHandler.String(info.Name),
	}
	if info.ConsumerGroup != "" {
		static = append(static, semconv.MessagingConsumerGroupName(info.ConsumerGroup))
	}
	consumer := trace.WithSpanKind(trace.SpanKindConsumer)
	start = func(msg *message.Message, _ int) {
		parent := msg.Context()
		ctx, span := tracer.Start(Extract(parent, msg.Metadata), name, consumer)
		if span.IsRecording() {
			span.SetAttributes(static...)
			span.SetAttributes(delivery(parent, msg)...)
		}
		msg.SetContext(ctx)
	}
	end = func(msg *message.Message, _ int, _ time.Duration, err error) {
		End(trace.SpanFromContext(msg.Context()), err)
	}
	return start, end
}

// delivery is what a consumer span says about one delivery of msg.
func delivery(ctx context.Context, msg *message.Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.MessagingMessageID(msg.UUID),
		AttrAttempt.Int(max(meta.Attempt(ctx), 1)),
		AttrCorrelationID.String(meta.Correlation(msg)),
	}
	// Only a message from Kafka has a partition (not one from the
	// in-memory transport).
	if pos, ok := meta.Consumed(ctx); ok {
		attrs = append(attrs, semconv.MessagingSystemKafka,
			semconv.MessagingDestinationPartitionID(strconv.FormatInt(int64(pos.Partition), 10)),
			semconv.MessagingKafkaOffset(int(pos.Offset)))
		if key := msg.Metadata.Get(meta.Key); key != "" {
			attrs = append(attrs, semconv.MessagingKafkaMessageKey(key))
		}
	}
	return attrs
}

// End ends span, recording err (if any) as its error, its status and its
// error.type (the Go type of the error at the end of err's chain: a class,
// not the message).
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
	}
	span.End()
}

// errorType is the type of the innermost error of err's chain.
func errorType(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return fmt.Sprintf("%T", err)
		}
		err = next
	}
}
