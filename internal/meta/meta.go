// Package meta names the message metadata (Kafka headers) and context keys
// that eventfx's packages share. The header names are part of the wire
// contract of docs/guarantees.md.
package meta

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Correlation returns the correlation ID of msg, a message being handled:
// the one it carries, or, when it carries none, the ID of the conversation
// it starts, which is its own message ID (as NServiceBus does). The ID on
// every later event then leads back to the message that started it; for a
// record from a producer other than eventfx that is
// "<topic>-<partition>-<offset>".
//
// The router's chain does not write it into msg's metadata (that cost a map
// allocation per message): read it with this function, or
// handlers.CorrelationID in a handler; a message without an ID is given a
// random correlation ID by the chain itself.
func Correlation(msg *message.Message) string {
	if id := msg.Metadata.Get(CorrelationID); id != "" {
		return id
	}
	return msg.UUID
}

// Headers on the wire.
const (
	// CorrelationID is the correlation ID header (Watermill's name).
	CorrelationID = "correlation_id"
	// Traceparent and Tracestate are the W3C trace context, propagated
	// whether or not traces are exported.
	Traceparent = "traceparent"
	Tracestate  = "tracestate"
	// ContentType is the media type of the payload, when known.
	ContentType = "content_type"
	// Key carries the Kafka partition key inside a Watermill message. The
	// Kafka marshaler moves it to the record key and never writes it as a
	// header.
	Key = "_eventfx_key"

	// Poison headers: Watermill's four names, then eventfx's.
	ReasonPoisoned     = "reason_poisoned"
	TopicPoisoned      = "topic_poisoned"
	HandlerPoisoned    = "handler_poisoned"
	SubscriberPoisoned = "subscriber_poisoned"
	Attempts           = "eventfx_attempts"
	PoisonedAt         = "eventfx_poisoned_at"
	OriginalPartition  = "eventfx_original_partition"
	OriginalOffset     = "eventfx_original_offset"
	ConsumerGroup      = "eventfx_consumer_group"
	// Service is the service whose handler poisoned the message (config
	// "service"). Records poisoned before it was written lack it; the
	// poison tools then take the consumer group's prefix.
	Service = "eventfx_service"
	// Replayed counts how many times a poisoned message was replayed.
	Replayed = "eventfx_replayed"
	// ReplayFor names the consumer group a replayed message is for: replay
	// writes the poison record's eventfx_consumer_group into it, and the
	// router acknowledges, without handling, a message whose ReplayFor
	// names another group than the handler's. Only the handler that failed
	// the message handles it again; the others, which handled it the first
	// time, do not.
	//
	// A header rather than a replay topic per handler: the record goes back
	// to its own topic and, by its key, to its own partition, so it keeps
	// its place in the key's order relative to newer events; it needs no
	// extra topic or subscription per handler; and every existing
	// deployment's handlers honour it as they are. Its limits: consumers
	// that are not eventfx (a Java service, kcat) ignore it and see the
	// replayed record as before; and a handler whose consumer group was
	// renamed since the failure skips it (replay with another target
	// then). A record without eventfx_consumer_group is replayed without
	// ReplayFor, to every consumer, as before. The header is not carried
	// onto what a handler emits, nor onto a poison record.
	ReplayFor = "eventfx_replay_for"
)

// PoisonHeaders lists the headers the poison queue adds; replay removes them.
var PoisonHeaders = []string{
	ReasonPoisoned, TopicPoisoned, HandlerPoisoned, SubscriberPoisoned,
	Attempts, PoisonedAt, OriginalPartition, OriginalOffset, ConsumerGroup,
	Service,
}

type ctxKey int

const (
	attemptKey ctxKey = iota
	correlationKey
	recordKey
	messageKey
	handlerKey
	loggerKey
	emitKey
)

// Delivery is the context of a message during its handling: it carries the
// message (MessageFrom) and the current attempt number (Attempt), both for
// one allocation per delivery. The router creates it; the attempt changes
// as retries go on.
type Delivery struct {
	context.Context
	msg     *message.Message
	handler string
	logger  *slog.Logger
	emit    func(context.Context, []*message.Message) error
	attempt atomic.Int32

	// lazy derives the values the parent lacks from the message (the trace
	// context of its headers), the first time a value other than the
	// message and attempt is asked for; derived holds its result.
	lazy    func(context.Context, *message.Message) context.Context
	derived atomic.Pointer[context.Context]
}

// Init makes d, a zero Delivery (the router embeds it in a larger
// allocation), the delivery context of msg by the handler named handler,
// whose logger (the service's, with the handler's name on it) is logger,
// derived from parent. When lazy is not nil, lazy(parent, msg) replaces
// parent for the values (not for the deadline and cancellation) the first
// time a value other than the message, handler, logger and attempt is
// asked for: a handler that never looks pays nothing, not even a look at
// the message's headers.
func (d *Delivery) Init(parent context.Context, msg *message.Message, handler string, logger *slog.Logger, lazy func(context.Context, *message.Message) context.Context) {
	d.Context, d.msg, d.handler, d.logger, d.lazy = parent, msg, handler, logger, lazy
}

// SetEmit records how the handler's emitted messages are published: to its
// publish topic, through the observers (Emit).
func (d *Delivery) SetEmit(emit func(context.Context, []*message.Message) error) { d.emit = emit }

// SetAttempt records the 1-based number of the attempt starting.
func (d *Delivery) SetAttempt(n int) { d.attempt.Store(int32(n)) }

// Value answers the message, handler and attempt keys, and asks the parent
// for the rest.
func (d *Delivery) Value(key any) any {
	switch key {
	case messageKey:
		return d.msg
	case handlerKey:
		if d.handler != "" {
			return d.handler
		}
	case loggerKey:
		if d.logger != nil {
			return d.logger
		}
	case emitKey:
		if d.emit != nil {
			return d.emit
		}
	case attemptKey:
		if n := d.attempt.Load(); n > 0 {
			return int(n)
		}
	}
	if d.lazy == nil {
		return d.Context.Value(key)
	}
	p := d.derived.Load()
	if p == nil {
		// Deriving twice, from two goroutines, gives equal contexts: the
		// first one stored is kept.
		c := d.lazy(d.Context, d.msg)
		d.derived.CompareAndSwap(nil, &c)
		p = d.derived.Load()
	}
	return (*p).Value(key)
}

// Emit publishes msgs, emitted while handling the message of ctx, as the
// router publishes what a handler returns: to the handler's publish topic,
// through the observers, within the attempt. Outside a delivery it fails.
func Emit(ctx context.Context, msgs []*message.Message) error {
	emit, ok := ctx.Value(emitKey).(func(context.Context, []*message.Message) error)
	if !ok {
		return errors.New("emit: not within a handler's delivery")
	}
	return emit(ctx, msgs)
}

// HandlerName returns the name of the handler of the delivery ctx belongs
// to, or "". It is the eventfx handler's name: Watermill's handler name
// (message.HandlerNameFromCtx) differs when a handler takes its messages
// on several channels (key mode), a Watermill handler per channel.
func HandlerName(ctx context.Context) string {
	name, _ := ctx.Value(handlerKey).(string)
	return name
}

// Logger returns the logger of the handler whose delivery ctx belongs to,
// or nil.
func Logger(ctx context.Context) *slog.Logger {
	l, _ := ctx.Value(loggerKey).(*slog.Logger)
	return l
}

// WithMessage records the message being handled in ctx.
func WithMessage(ctx context.Context, msg *message.Message) context.Context {
	return context.WithValue(ctx, messageKey, msg)
}

// MessageFrom returns the message being handled, if ctx carries one.
func MessageFrom(ctx context.Context) (*message.Message, bool) {
	msg, ok := ctx.Value(messageKey).(*message.Message)
	return msg, ok
}

// Position is where a consumed record sits in its topic.
type Position struct {
	Partition int32
	Offset    int64
}

// WithRecord records the partition and offset of the consumed record in
// ctx. Subscribers other than watermill-kafka's (which has its own context
// keys) set it, so the poison queue can name where a message came from.
func WithRecord(ctx context.Context, partition int32, offset int64) context.Context {
	return context.WithValue(ctx, recordKey, Position{Partition: partition, Offset: offset})
}

// IsRecordKey reports whether key is the context key of WithRecord: a
// context type of a subscriber's own (keyorder's) answers it with the
// record's Position instead of wrapping a context per message.
func IsRecordKey(key any) bool { return key == any(recordKey) }

// Record returns the position recorded by WithRecord.
func Record(ctx context.Context) (Position, bool) {
	p, ok := ctx.Value(recordKey).(Position)
	return p, ok
}

// Consumed returns where the message being handled in ctx was consumed:
// from WithRecord, or from watermill-kafka's own context keys.
func Consumed(ctx context.Context) (Position, bool) {
	if pos, ok := Record(ctx); ok {
		return pos, true
	}
	p, ok := kafka.MessagePartitionFromCtx(ctx)
	if !ok {
		return Position{}, false
	}
	o, _ := kafka.MessagePartitionOffsetFromCtx(ctx)
	return Position{Partition: p, Offset: o}, true
}

// WithAttempt records the 1-based attempt number in ctx.
func WithAttempt(ctx context.Context, attempt int) context.Context {
	return context.WithValue(ctx, attemptKey, attempt)
}

// Attempt returns the 1-based attempt number recorded in ctx, or 0.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey).(int)
	return n
}

// WithCorrelationID records a correlation ID in ctx.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationIDFrom returns the correlation ID recorded in ctx, or "".
func CorrelationIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}

// RetryAfterOf returns the delay an error in err's chain asks the retry
// policy to wait at least (handlers.RetryAfter): any error with a
// RetryAfter() time.Duration method.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter(), true
	}
	return 0, false
}
