package handlers

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/internal/meta"
)

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
// the one set with ContextWithCorrelationID, or "". A message that arrived without
// one starts a conversation: its correlation ID is its own message ID,
// which is not written into its metadata, so read it here rather than from
// the correlation_id header.
func CorrelationID(ctx context.Context) string { return meta.CorrelationOf(ctx) }

// ContextWithCorrelationID returns ctx carrying a correlation ID, for code
// outside a handler (an HTTP request, a job) that publishes events: what
// they publish from ctx carries it.
func ContextWithCorrelationID(ctx context.Context, id string) context.Context {
	return meta.WithCorrelationID(ctx, id)
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
