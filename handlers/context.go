package handlers

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/internal/meta"
)

// WithMessage records the message being handled in ctx, so the accessors
// below work; the router's chain does it for every message.
func WithMessage(ctx context.Context, msg *message.Message) context.Context {
	return meta.WithMessage(ctx, msg)
}

// MessageFromContext returns the message being handled, if ctx belongs to a
// handler.
func MessageFromContext(ctx context.Context) (*message.Message, bool) {
	return meta.MessageFrom(ctx)
}

// MessageID returns the ID of the message being handled, or "".
func MessageID(ctx context.Context) string {
	if msg, ok := MessageFromContext(ctx); ok {
		return msg.UUID
	}
	return ""
}

// CorrelationID returns the correlation ID of the message being handled, or
// the one set with WithCorrelationID, or "". A message that arrived without
// one starts a conversation: its correlation ID is its own message ID,
// which is not written into its metadata, so read it here rather than from
// the correlation_id header.
func CorrelationID(ctx context.Context) string {
	if msg, ok := MessageFromContext(ctx); ok {
		if id := meta.Correlation(msg); id != "" {
			return id
		}
	}
	return meta.CorrelationIDFrom(ctx)
}

// WithCorrelationID returns ctx carrying a correlation ID, for code outside
// a handler (an HTTP request, a job) that publishes events.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return meta.WithCorrelationID(ctx, id)
}

// Inherit stamps msgs, about to be published from ctx, with what they
// inherit from the message being handled (or from ctx outside a handler):
// its correlation ID and W3C trace context (traceparent, tracestate). The
// trace context is that of ctx's span when ctx has one — inside a traced
// handler its attempt span, so what it emits is that span's child — else
// the handled message's, copied as it came. Values a message already has
// are kept (a message with a traceparent keeps its trace context whole).
func Inherit(ctx context.Context, msgs ...*message.Message) {
	cid := CorrelationID(ctx)
	traced := trace.SpanContextFromContext(ctx).IsValid()
	in, _ := MessageFromContext(ctx)
	for _, m := range msgs {
		if cid != "" && m.Metadata.Get(meta.CorrelationID) == "" {
			m.Metadata.Set(meta.CorrelationID, cid)
		}
		if m.Metadata.Get(meta.Traceparent) != "" {
			continue // its own trace context, kept whole
		}
		switch {
		case traced:
			own := m.Metadata.Get(meta.Tracestate)
			propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(m.Metadata))
			if own != "" {
				m.Metadata.Set(meta.Tracestate, own)
			}
		case in != nil:
			for _, h := range []string{meta.Traceparent, meta.Tracestate} {
				if v := in.Metadata.Get(h); v != "" && m.Metadata.Get(h) == "" {
					m.Metadata.Set(h, v)
				}
			}
		}
	}
}

// Key returns the partition key of the message being handled, or "".
func Key(ctx context.Context) string {
	if msg, ok := MessageFromContext(ctx); ok {
		return msg.Metadata.Get(meta.Key)
	}
	return ""
}

// Topic returns the topic the message being handled was consumed from.
func Topic(ctx context.Context) string {
	return message.SubscribeTopicFromCtx(ctx)
}

// HandlerName returns the name of the handler running.
func HandlerName(ctx context.Context) string {
	if name := meta.HandlerName(ctx); name != "" {
		return name
	}
	return message.HandlerNameFromCtx(ctx)
}

// Attempt returns the 1-based attempt number of the current delivery (1 on
// the first try, 2 on the first retry); 0 outside a handler.
func Attempt(ctx context.Context) int {
	return meta.Attempt(ctx)
}

// Logger returns the service's logger for code handling a message: its
// level, format and output are the service's (observability.log; silent
// under eventfxtest unless asked), and it carries the service and the
// message's fields already: handler, topic, message_id, correlation_id and
// attempt. Outside a handler it returns slog.Default(). Each call builds a
// new logger: call it once per message, not per line.
//
//	log := handlers.Logger(ctx)
//	log.Info("billing", "order", o.ID)
func Logger(ctx context.Context) *slog.Logger {
	l := meta.Logger(ctx)
	msg, ok := MessageFromContext(ctx)
	if l == nil || !ok {
		return slog.Default()
	}
	return l.With(
		"topic", Topic(ctx),
		"message_id", msg.UUID,
		"correlation_id", CorrelationID(ctx),
		"attempt", Attempt(ctx),
	)
}

// Header returns a header (metadata entry) of the message being handled.
func Header(ctx context.Context, name string) string {
	if msg, ok := MessageFromContext(ctx); ok {
		return msg.Metadata.Get(name)
	}
	return ""
}
