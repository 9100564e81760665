package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/meta"
)

// AttemptsError is a handler's final error after the retry policy gave up,
// with the number of attempts made.
type AttemptsError struct {
	Err      error
	Attempts int
}

func (e *AttemptsError) Error() string { return e.Err.Error() }
func (e *AttemptsError) Unwrap() error { return e.Err }

// ErrInterrupted wraps a handler error caused by shutdown: the message is
// nacked, never poisoned, and delivered again after the restart.
var ErrInterrupted = fmt.Errorf("interrupted by shutdown, will be redelivered: %w", context.Canceled)

// CorrelationID keeps the incoming correlation ID, generates one when it is
// missing, records the message in its context (so handlers.CorrelationID
// and the Publisher find it: what a handler publishes carries the ID), and
// copies it onto every message the handler returns.
func CorrelationID(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		id := msg.Metadata.Get(meta.CorrelationID)
		if id == "" {
			id = watermill.NewUUID()
			msg.Metadata.Set(meta.CorrelationID, id)
		}
		msg.SetContext(handlers.WithMessage(msg.Context(), msg))
		produced, err := h(msg)
		for _, p := range produced {
			if p.Metadata.Get(meta.CorrelationID) == "" {
				p.Metadata.Set(meta.CorrelationID, id)
			}
		}
		return produced, err
	}
}

// Emit publishes the messages the handler returns to topic, within the
// attempt: a failed publish fails the attempt (retried, then poisoned) and
// the incoming message is acknowledged only after its events were written.
// The emitted messages inherit the incoming correlation ID and trace
// context. A handler without a publish topic (topic "") that returns
// messages has a wiring bug: that is a permanent error.
func Emit(topic string, pub message.Publisher) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err != nil || len(produced) == 0 {
				return nil, err
			}
			if topic == "" {
				return nil, handlers.Permanent(fmt.Errorf("handler returned %d message(s) but has no publish topic", len(produced)))
			}
			handlers.Inherit(handlers.WithMessage(msg.Context(), msg), produced...)
			if err := pub.Publish(topic, produced...); err != nil {
				return nil, fmt.Errorf("publish %d emitted message(s) to %s: %w", len(produced), topic, err)
			}
			return nil, nil
		}
	}
}

// Log logs each handling at debug level once retries are over (inside the
// poison queue, which logs what it poisons), with the five
// keys every log line about a message carries (message_id, correlation_id,
// handler, topic, attempt) plus its outcome and duration. At higher levels
// it costs one Enabled check.
func Log(handler string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			if !logger.Enabled(ctx, slog.LevelDebug) {
				return h(msg)
			}
			start := time.Now()
			produced, err := h(msg)
			attempt := 1
			var ae *AttemptsError
			if errors.As(err, &ae) {
				attempt = ae.Attempts
			}
			logger.Debug("message handled",
				"message_id", msg.UUID, "correlation_id", msg.Metadata.Get(meta.CorrelationID),
				"handler", handler, "topic", message.SubscribeTopicFromCtx(ctx), "attempt", attempt,
				"duration", time.Since(start), "error", err)
			return produced, err
		}
	}
}

// PoisonConfig configures the poison-queue middleware of one handler.
type PoisonConfig struct {
	// Topic receives the poisoned messages.
	Topic string
	// Handler and ConsumerGroup are written to the poison headers.
	Handler       string
	ConsumerGroup string
	// Publisher publishes to Topic.
	Publisher message.Publisher
	Logger    *slog.Logger
}

// Poison sends a message whose handling finally failed to the poison topic,
// with its payload, ID and headers plus the poison headers, and acknowledges
// it so its offset is committed. A message whose context was cancelled (the
// service is shutting down) is not poisoned: the error goes up, the message
// is nacked and delivered again after the restart. If the poison topic
// cannot be written, the error goes up too and the message is retried.
func Poison(c PoisonConfig) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err == nil {
				return produced, nil
			}
			ctx := msg.Context()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %v", ErrInterrupted, err)
			}
			attempts := 1
			var ae *AttemptsError
			if errors.As(err, &ae) {
				attempts = ae.Attempts
			}
			pm := message.NewMessage(msg.UUID, msg.Payload)
			pm.Metadata = make(message.Metadata, len(msg.Metadata)+9)
			for k, v := range msg.Metadata {
				pm.Metadata[k] = v
			}
			topic := message.SubscribeTopicFromCtx(ctx)
			reason := oneLine(err.Error())
			pm.Metadata.Set(meta.ReasonPoisoned, reason)
			pm.Metadata.Set(meta.TopicPoisoned, topic)
			pm.Metadata.Set(meta.HandlerPoisoned, c.Handler)
			pm.Metadata.Set(meta.SubscriberPoisoned, c.ConsumerGroup)
			pm.Metadata.Set(meta.Attempts, strconv.Itoa(attempts))
			pm.Metadata.Set(meta.PoisonedAt, time.Now().UTC().Format(time.RFC3339Nano))
			pm.Metadata.Set(meta.ConsumerGroup, c.ConsumerGroup)
			if p, ok := kafka.MessagePartitionFromCtx(ctx); ok {
				pm.Metadata.Set(meta.OriginalPartition, strconv.FormatInt(int64(p), 10))
			}
			if o, ok := kafka.MessagePartitionOffsetFromCtx(ctx); ok {
				pm.Metadata.Set(meta.OriginalOffset, strconv.FormatInt(o, 10))
			}
			if perr := c.Publisher.Publish(c.Topic, pm); perr != nil {
				return nil, fmt.Errorf("publish to poison topic %s: %w (handler error: %s)", c.Topic, perr, reason)
			}
			c.Logger.Warn("message poisoned",
				"message_id", msg.UUID, "correlation_id", msg.Metadata.Get(meta.CorrelationID),
				"handler", c.Handler, "topic", topic, "attempt", attempts,
				"reason", reason, "poison_topic", c.Topic)
			return nil, nil
		}
	}
}

// Retry runs the handler until it succeeds, returns a permanent error, or
// has been tried 1+MaxRetries times, waiting an exponential backoff with
// jitter between attempts (or the delay a handlers.RetryAfter error asks
// for, capped at MaxInterval). The attempt number is in the message's
// context (handlers.Attempt). It gives up at once when the message's
// context is cancelled. Its final error is an *AttemptsError.
func Retry(p config.Retry, handler string, logger *slog.Logger) message.HandlerMiddleware {
	p = p.WithDefaults()
	maxAttempts := p.EffectiveMaxRetries() + 1
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			base := msg.Context()
			defer msg.SetContext(base)
			delay := p.InitialInterval
			for attempt := 1; ; attempt++ {
				msg.SetContext(meta.WithAttempt(base, attempt))
				produced, err := h(msg)
				if err == nil {
					return produced, nil
				}
				if attempt >= maxAttempts || handlers.IsPermanent(err) || base.Err() != nil {
					return nil, &AttemptsError{Err: err, Attempts: attempt}
				}
				wait := min(jittered(delay, p.Jitter), p.MaxInterval)
				if hint, ok := handlers.RetryAfterHint(err); ok {
					wait = max(wait, min(hint, p.MaxInterval))
				}
				if logger.Enabled(base, slog.LevelDebug) {
					logger.Debug("handler failed, retrying",
						"message_id", msg.UUID, "correlation_id", msg.Metadata.Get(meta.CorrelationID),
						"handler", handler, "topic", message.SubscribeTopicFromCtx(base), "attempt", attempt,
						"retry_in", wait, "error", err)
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-base.Done():
					t.Stop()
					return nil, &AttemptsError{Err: err, Attempts: attempt}
				}
				delay = min(time.Duration(float64(delay)*p.Multiplier), p.MaxInterval)
			}
		}
	}
}

// jittered spreads d uniformly over [d(1-j), d(1+j)].
func jittered(d time.Duration, j float64) time.Duration {
	if j <= 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + j*(2*rand.Float64()-1)))
}

// Timeout bounds each attempt: the handler's context is cancelled after d.
// A zero or negative d disables it (no timer is created).
func Timeout(d time.Duration) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if d <= 0 {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx, cancel := context.WithTimeout(parent, d)
			defer cancel()
			msg.SetContext(ctx)
			defer msg.SetContext(parent)
			produced, err := h(msg)
			if err != nil && ctx.Err() == context.DeadlineExceeded && parent.Err() == nil {
				err = fmt.Errorf("attempt timed out after %s: %w", d, err)
			}
			return produced, err
		}
	}
}

// Recoverer turns a panic in the handler into an error (retried, then
// poisoned). The error is one line; the stack goes to the log.
func Recoverer(handler string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) (produced []*message.Message, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %s", oneLine(fmt.Sprint(r)))
					logger.Error("handler panicked",
						"message_id", msg.UUID, "correlation_id", msg.Metadata.Get(meta.CorrelationID),
						"handler", handler, "topic", message.SubscribeTopicFromCtx(msg.Context()),
						"attempt", meta.Attempt(msg.Context()), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
			}()
			return h(msg)
		}
	}
}

// oneLine collapses s to one line for a header.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
