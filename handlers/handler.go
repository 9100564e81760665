// Package handlers is how a team declares its handlers: typed functions of
// an event, errors classified as permanent or transient, access to the
// message's ID, correlation ID, key, topic and attempt from the context, and
// fx helpers that register handlers in a value group.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/meta"
)

// Handler is one subscription: the messages of Topic go to Func, in their
// own consumer group "<service or kafka.consumer_group>.<Name>".
type Handler struct {
	// Name identifies the handler: consumer group suffix, handler_poisoned
	// header, log field. Required, unique within a service.
	Name string
	// Topic is consumed. Required.
	Topic string
	// PublishTopic receives the messages Func returns. Empty when the
	// handler emits nothing.
	PublishTopic string
	// Func handles one message. A nil error acknowledges it; an error is
	// retried unless Permanent, then poisoned.
	Func message.HandlerFunc
	// Retry overrides the non-zero fields of the service's retry policy.
	Retry config.Retry
	// Consume overrides kafka.consume for this handler when not empty:
	// config.ConsumePartition or config.ConsumeKey.
	Consume string
	// MaxInFlight overrides kafka.max_in_flight (key mode) when positive.
	MaxInFlight int
}

// Validator is implemented by events that check themselves after decoding;
// a validation error is permanent.
type Validator interface {
	Validate() error
}

// Keyed is implemented by emitted events that have a partition key (same
// key → same partition → order).
type Keyed interface {
	EventKey() string
}

// Option customises a typed handler.
type Option func(*options)

type options struct {
	codec       Codec
	retry       config.Retry
	consume     string
	maxInFlight int
	batchSize   int
	batchWait   time.Duration
}

// WithCodec replaces the JSON codec.
func WithCodec(c Codec) Option { return func(o *options) { o.codec = c } }

// WithRetry overrides fields of the service's retry policy for this handler.
func WithRetry(r config.Retry) Option { return func(o *options) { o.retry = r } }

// ConsumeByKey consumes this handler's topic in key mode, whatever
// kafka.consume says: messages of different keys of one partition are
// handled in parallel (up to maxInFlight at once; 0: kafka.max_in_flight),
// each key's in order. For I/O-bound handlers; see docs/consumption.md.
func ConsumeByKey(maxInFlight int) Option {
	return func(o *options) { o.consume, o.maxInFlight = config.ConsumeKey, maxInFlight }
}

// ConsumeByPartition consumes this handler's topic one message at a time
// per partition, whatever kafka.consume says.
func ConsumeByPartition() Option {
	return func(o *options) { o.consume, o.maxInFlight = config.ConsumePartition, 0 }
}

func buildOptions(opts []Option) options {
	o := options{codec: JSON{}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// New declares a handler of events of type T, decoded with the codec (JSON
// by default). A payload that does not decode, or a T whose Validate fails,
// is a permanent error: the message goes to the poison queue at once.
func New[T any](name, topic string, fn func(ctx context.Context, e T) error, opts ...Option) Handler {
	o := buildOptions(opts)
	return Handler{
		Name:        name,
		Topic:       topic,
		Retry:       o.retry,
		Consume:     o.consume,
		MaxInFlight: o.maxInFlight,
		Func: func(msg *message.Message) ([]*message.Message, error) {
			e := new(T)
			ctx, err := decodeTo(msg, o.codec, e)
			if err != nil {
				return nil, err
			}
			return nil, call(fn, ctx, e)
		},
	}
}

// NewEmitting declares a handler of In events that emits Out events to
// publishTopic. The emitted events carry the incoming correlation ID and
// trace context, a new message ID and, when Out implements Keyed, their
// partition key. They are published within the attempt, before the incoming
// message is acknowledged: if publishing fails, the attempt fails and is
// retried like any other (then poisoned), so an event may be emitted more
// than once (at-least-once), with a new ID each time.
func NewEmitting[In, Out any](name, topic, publishTopic string, fn func(ctx context.Context, e In) ([]Out, error), opts ...Option) Handler {
	o := buildOptions(opts)
	return Handler{
		Name:         name,
		Topic:        topic,
		PublishTopic: publishTopic,
		Retry:        o.retry,
		Consume:      o.consume,
		MaxInFlight:  o.maxInFlight,
		Func: func(msg *message.Message) ([]*message.Message, error) {
			e := new(In)
			ctx, err := decodeTo(msg, o.codec, e)
			if err != nil {
				return nil, err
			}
			outs, err := fn(ctx, *e)
			if err != nil {
				return nil, err
			}
			msgs := make([]*message.Message, 0, len(outs))
			for _, out := range outs {
				m, err := meta.Encode(ctx, o.codec, publishTopic, out)
				if err != nil {
					return nil, codecError(fmt.Errorf("encode %T: %w", out, err))
				}
				msgs = append(msgs, m)
			}
			return msgs, nil
		},
	}
}

// decode turns msg into a T, decoded by c, and the context the typed
// function gets.
func decode[T any](msg *message.Message, c Codec) (context.Context, T, error) {
	e := new(T)
	ctx, err := decodeTo(msg, c, e)
	return ctx, *e, err
}

// decodeTo is decode into e. The typed handlers call it rather than
// decode, and its errors are made in functions of their own: the frames
// of the decode path stay small, as a handler's stack holds them while
// the codec decodes.
func decodeTo[T any](msg *message.Message, c Codec, e *T) (context.Context, error) {
	ctx := msg.Context()
	if m, ok := MessageFromContext(ctx); !ok || m != msg {
		ctx = meta.WithMessage(ctx, msg) // outside the router's chain
	}
	if err := c.Unmarshal(msg.Payload, e); err != nil {
		return ctx, decodeError(*e, err)
	}
	if err := validate(e); err != nil {
		return ctx, invalidError(*e, err)
	}
	return ctx, nil
}

// call is fn(ctx, *e). Its frame, which holds the copy of the event fn
// gets, is not on the stack while the event decodes.
//
//go:noinline
func call[T any](fn func(context.Context, T) error, ctx context.Context, e *T) error {
	return fn(ctx, *e)
}

// decodeError is the error of a codec that could not decode e.
func decodeError(e any, err error) error {
	return codecError(fmt.Errorf("decode %T: %w", e, err))
}

// invalidError is the error of an event e whose Validate failed.
func invalidError(e any, err error) error {
	return Permanent(fmt.Errorf("invalid %T: %w", e, err))
}

// validate runs e's Validate, if *e or e has one. Only a pointer or an
// interface T can have a Validate that *T has not: asking any other T
// would copy it.
func validate[T any](e *T) error {
	if v, ok := any(e).(Validator); ok {
		return v.Validate()
	}
	if k := reflect.TypeFor[T]().Kind(); k != reflect.Pointer && k != reflect.Interface {
		return nil
	}
	if v, ok := any(*e).(Validator); ok {
		return v.Validate()
	}
	return nil
}

// codecError classifies a codec's error: transient when the codec says
// what it needs is unavailable (ErrCodecUnavailable), else permanent.
func codecError(err error) error {
	if errors.Is(err, ErrCodecUnavailable) {
		return err
	}
	return Permanent(err)
}
