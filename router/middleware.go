package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/ids"
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

// CorrelationID keeps the incoming correlation ID, sets one when it is
// missing (the message's own ID, see meta.Correlation), records the message in its context (so handlers.CorrelationID
// and the Publisher find it: what a handler publishes carries the ID), and
// copies it onto every message the handler returns. (Chain does all this
// itself; the middleware is for a router of your own.)
func CorrelationID(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		id := correlate(msg)
		msg.SetContext(meta.WithMessage(msg.Context(), msg))
		produced, err := h(msg)
		for _, p := range produced {
			if p.Metadata.Get(meta.CorrelationID) == "" {
				p.Metadata.Set(meta.CorrelationID, id)
			}
		}
		return produced, err
	}
}

// correlate returns msg's correlation ID (meta.Correlation), and sets it in
// msg's metadata when msg carries none.
func correlate(msg *message.Message) string {
	id := msg.Metadata.Get(meta.CorrelationID)
	if id == "" {
		id = cmp.Or(msg.UUID, ids.New())
		msg.Metadata.Set(meta.CorrelationID, id)
	}
	return id
}

// Emit publishes the messages the handler returns to topic, within the
// attempt: a failed publish fails the attempt (retried, then poisoned) and
// the incoming message is acknowledged only after its events were written.
// The emitted messages inherit the incoming correlation ID and trace
// context. A handler without a publish topic (topic "") that returns
// messages has a wiring bug: that is a permanent error.
func Emit(topic string, pub message.Publisher) message.HandlerMiddleware {
	e := emitter{topic: topic, pub: pub}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err != nil || len(produced) == 0 {
				return nil, err
			}
			return nil, e.emit(meta.WithMessage(msg.Context(), msg), produced)
		}
	}
}

// emitter publishes what a handler returns (see Emit).
type emitter struct {
	topic string
	pub   message.Publisher
}

// emit publishes produced, emitted while handling the message in ctx.
func (e emitter) emit(ctx context.Context, produced []*message.Message) error {
	if e.topic == "" {
		return handlers.Permanent(fmt.Errorf("handler returned %d message(s) but has no publish topic", len(produced)))
	}
	handlers.Inherit(ctx, produced...)
	if err := e.pub.Publish(e.topic, produced...); err != nil {
		return fmt.Errorf("publish %d emitted message(s) to %s: %w", len(produced), e.topic, err)
	}
	return nil
}

// Log logs each handling at debug level once retries are over (inside the
// poison queue, which logs what it poisons), with the five
// keys every log line about a message carries (message_id, correlation_id,
// handler, topic, attempt) plus its outcome and duration. The level is
// read when the chain is built: when the logger does not log debug then,
// Log is not in the chain at all.
func Log(handler string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if !logger.Enabled(context.Background(), slog.LevelDebug) {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			return handleLogged(h, msg, handler, logger)
		}
	}
}

// handleLogged is Log at debug level.
func handleLogged(h message.HandlerFunc, msg *message.Message, handler string, logger *slog.Logger) ([]*message.Message, error) {
	start := time.Now()
	produced, err := h(msg)
	logHandled(logger, handler, msg, start, err)
	return produced, err
}

// logHandled logs the result of a message's handling, retries included.
func logHandled(logger *slog.Logger, handler string, msg *message.Message, start time.Time, err error) {
	attempt := 1
	var ae *AttemptsError
	if errors.As(err, &ae) {
		attempt = ae.Attempts
	}
	logger.Debug("message handled",
		"message_id", msg.UUID, "correlation_id", meta.Correlation(msg),
		"handler", handler, "topic", message.SubscribeTopicFromCtx(msg.Context()), "attempt", attempt,
		"duration", time.Since(start), "error", err)
}

// PoisonConfig configures the poison-queue middleware of one handler.
type PoisonConfig struct {
	// Topic receives the poisoned messages.
	Topic string
	// Handler, ConsumerGroup and Service are written to the poison
	// headers.
	Handler       string
	ConsumerGroup string
	Service       string
	// Publisher publishes to Topic.
	Publisher message.Publisher
	Logger    *slog.Logger
}

// Poison sends a message whose handling finally failed to the poison topic,
// with its payload, ID and headers (but eventfx_replay_for: the poison
// headers name the consumer group) plus the poison headers, and acknowledges
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
			return nil, c.poison(msg, err)
		}
	}
}

// poison publishes msg, whose handling failed with err, to the poison
// topic; it returns the error that goes up instead, if any.
func (c PoisonConfig) poison(msg *message.Message, err error) error {
	ctx := msg.Context()
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %v", ErrInterrupted, err)
	}
	attempts := 1
	var ae *AttemptsError
	if errors.As(err, &ae) {
		attempts = ae.Attempts
	}
	pm := message.NewMessage(msg.UUID, msg.Payload)
	pm.Metadata = make(message.Metadata, len(msg.Metadata)+10)
	for k, v := range msg.Metadata {
		pm.Metadata[k] = v
	}
	delete(pm.Metadata, meta.ReplayFor)
	pm.Metadata.Set(meta.CorrelationID, meta.Correlation(msg))
	topic := message.SubscribeTopicFromCtx(ctx)
	reason := meta.OneLine(err.Error())
	pm.Metadata.Set(meta.ReasonPoisoned, reason)
	pm.Metadata.Set(meta.TopicPoisoned, topic)
	pm.Metadata.Set(meta.HandlerPoisoned, c.Handler)
	pm.Metadata.Set(meta.SubscriberPoisoned, c.ConsumerGroup)
	pm.Metadata.Set(meta.Attempts, strconv.Itoa(attempts))
	pm.Metadata.Set(meta.PoisonedAt, time.Now().UTC().Format(time.RFC3339Nano))
	pm.Metadata.Set(meta.ConsumerGroup, c.ConsumerGroup)
	if c.Service != "" {
		pm.Metadata.Set(meta.Service, c.Service)
	}
	if pos, ok := meta.Consumed(ctx); ok {
		pm.Metadata.Set(meta.OriginalPartition, strconv.FormatInt(int64(pos.Partition), 10))
		pm.Metadata.Set(meta.OriginalOffset, strconv.FormatInt(pos.Offset, 10))
	}
	if perr := c.Publisher.Publish(c.Topic, pm); perr != nil {
		return fmt.Errorf("publish to poison topic %s: %w (handler error: %s)", c.Topic, perr, reason)
	}
	c.Logger.Warn("message poisoned",
		"message_id", msg.UUID, "correlation_id", meta.Correlation(msg),
		"handler", c.Handler, "topic", topic, "attempt", attempts,
		"reason", reason, "poison_topic", c.Topic)
	return nil
}

// Retry runs the handler until it succeeds, returns a permanent error, or
// has been tried 1+MaxRetries times, waiting an exponential backoff with
// jitter between attempts (or the delay a handlers.RetryAfter error asks
// for, capped at MaxInterval). The attempt number is in the message's
// context (handlers.Attempt). It gives up at once when the message's
// context is cancelled. Its final error is an *AttemptsError.
func Retry(p config.Retry, handler string, logger *slog.Logger) message.HandlerMiddleware {
	r := newRetrier(p, handler, logger)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			base := msg.Context()
			msg.SetContext(meta.WithAttempt(base, 1))
			produced, err := h(msg)
			if err != nil {
				attempts := 1
				attempts, err = r.retry(msg, base, err, func(n int) error {
					msg.SetContext(meta.WithAttempt(base, n))
					produced, err = h(msg)
					return err
				})
				if err != nil {
					produced, err = nil, &AttemptsError{Err: err, Attempts: attempts}
				}
			}
			msg.SetContext(base)
			return produced, err
		}
	}
}

// retrier is Retry's policy. Its retry is the slow path, after a first
// attempt failed: the middleware's and the chain's hot paths keep their
// slow paths in functions of their own, so their stack frames stay small.
type retrier struct {
	policy      config.Retry
	maxAttempts int
	handler     string
	logger      *slog.Logger
}

func newRetrier(p config.Retry, handler string, logger *slog.Logger) retrier {
	p = p.WithDefaults()
	return retrier{policy: p, maxAttempts: p.EffectiveMaxRetries() + 1, handler: handler, logger: logger}
}

// retry waits and calls try(2), try(3)... after attempt 1 failed with err,
// until an attempt succeeds (nil) or the policy gives up: the last error
// is permanent, attempts are used up, or base (the delivery's context)
// ended. It returns the number of attempts made and the last error.
func (r retrier) retry(msg *message.Message, base context.Context, err error, try func(attempt int) error) (int, error) {
	p := r.policy
	delay := p.InitialInterval
	for attempt := 1; ; attempt++ {
		if attempt >= r.maxAttempts || handlers.IsPermanent(err) || base.Err() != nil {
			return attempt, err
		}
		wait := min(jittered(delay, p.Jitter), p.MaxInterval)
		if hint, ok := handlers.RetryAfterHint(err); ok {
			wait = max(wait, min(hint, p.MaxInterval))
		}
		if r.logger.Enabled(base, slog.LevelDebug) {
			r.logger.Debug("handler failed, retrying",
				"message_id", msg.UUID, "correlation_id", meta.Correlation(msg),
				"handler", r.handler, "topic", message.SubscribeTopicFromCtx(base), "attempt", attempt,
				"retry_in", wait, "error", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-base.Done():
			t.Stop()
			return attempt, err
		}
		delay = min(time.Duration(float64(delay)*p.Multiplier), p.MaxInterval)
		if err = try(attempt + 1); err == nil {
			return attempt + 1, nil
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
// A zero or negative d disables it. The context's timer is created only
// when something waits on it (see deadlineCtx): a handler that never
// blocks on its context pays one small allocation per attempt.
func Timeout(d time.Duration) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if d <= 0 {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx := &deadlineCtx{parent: parent, deadline: time.Now().Add(d)}
			msg.SetContext(ctx)
			produced, err := h(msg)
			ctx.cancel()
			msg.SetContext(parent)
			if err != nil {
				err = timedOut(err, ctx, d)
			}
			return produced, err
		}
	}
}

// timedOut says so in err when the attempt's deadline passed (and not
// because the delivery's own context ended).
func timedOut(err error, ctx *deadlineCtx, d time.Duration) error {
	if ctx.Err() == context.DeadlineExceeded && ctx.parent.Err() == nil {
		return fmt.Errorf("attempt timed out after %s: %w", d, err)
	}
	return err
}

// deadlineCtx is context.WithDeadline(parent, deadline), built only when
// Done is first called. Until then Err compares the clock with the
// deadline: no timer, no registration with the parent. Most handlers never
// wait on their context; those that do (I/O, a derived context) get the
// standard one.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu    sync.Mutex
	real  context.Context // nil until Done
	stop  context.CancelFunc
	ended bool
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		c.real, c.stop = context.WithDeadline(c.parent, c.deadline)
		if c.ended {
			c.stop()
		}
	}
	return c.real.Done()
}

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	real, ended := c.real, c.ended
	c.mu.Unlock()
	if real != nil {
		return real.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	if ended {
		return context.Canceled
	}
	return nil
}

func (c *deadlineCtx) Value(key any) any { return c.parent.Value(key) }

// cancel ends the context when the attempt returns, as the CancelFunc of
// context.WithDeadline would.
func (c *deadlineCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	if c.stop != nil {
		c.stop()
	}
}

// Recoverer turns a panic in the handler into an error (retried, then
// poisoned). The error is one line; the stack goes to the log.
func Recoverer(handler string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) (produced []*message.Message, err error) {
			defer func() {
				if r := recover(); r != nil {
					produced, err = nil, recovered(r, handler, logger, msg)
				}
			}()
			return h(msg)
		}
	}
}

// recovered logs the panic r of the handler of msg, with its stack, and
// returns it as a one-line error.
func recovered(r any, handler string, logger *slog.Logger, msg *message.Message) error {
	logger.Error("handler panicked",
		"message_id", msg.UUID, "correlation_id", meta.Correlation(msg),
		"handler", handler, "topic", message.SubscribeTopicFromCtx(msg.Context()),
		"attempt", meta.Attempt(msg.Context()), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return fmt.Errorf("panic: %s", meta.OneLine(fmt.Sprint(r)))
}
