package routing

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

// emitter publishes the messages a handler returns to topic, within the
// attempt: a failed publish fails the attempt (retried, then poisoned) and
// the incoming message is acknowledged only after its events were written.
// The emitted messages inherit the incoming correlation ID and trace
// context. A handler without a publish topic (topic "") that returns
// messages has a wiring bug: that is a permanent error.
type emitter struct {
	topic string
	pub   message.Publisher
}

// emit publishes produced, emitted while handling the message in ctx.
func (e emitter) emit(ctx context.Context, produced []*message.Message) error {
	if e.topic == "" {
		return handlers.Permanent(fmt.Errorf("handler returned %d message(s) but has no publish topic", len(produced)))
	}
	meta.Inherit(ctx, produced...)
	if err := e.pub.Publish(e.topic, produced...); err != nil {
		return fmt.Errorf("publish %d emitted message(s) to %s: %w", len(produced), e.topic, err)
	}
	return nil
}

// logHandled logs, at debug level, the result of a message's handling once
// retries are over, with the five keys every log line about a message
// carries (message_id, correlation_id, handler, topic, attempt) plus its
// error and duration.
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

// poisoner sends a message whose handling finally failed to the poison
// topic, with its payload, ID and headers (but eventfx_replay_for: the
// poison headers name the consumer group) plus the poison headers, so it
// can be acknowledged and its offset committed. A message whose context
// was cancelled (the service is shutting down) is not poisoned: the error
// goes up, the message is nacked and delivered again after the restart. If
// the poison topic cannot be written, the error goes up too and the
// message is retried.
type poisoner struct {
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

// poison publishes msg, whose handling failed with err, to the poison
// topic; it returns the error that goes up instead, if any.
func (c poisoner) poison(msg *message.Message, err error) error {
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

// retrier is the retry policy of one handler: up to 1+MaxRetries attempts
// until one succeeds or returns a permanent error, an exponential backoff
// with jitter between them (or the delay a handlers.RetryAfter error asks
// for, capped at MaxInterval), giving up at once when the delivery's
// context ends. Its retry is the slow path, after a first attempt failed:
// the chain's hot path keeps its slow paths in functions of their own, so
// its stack frames stay small.
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
		if hint, ok := meta.RetryAfterOf(err); ok {
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

// timedOut says so in err when the attempt's deadline passed (and not
// because the delivery's own context ended).
func timedOut(err error, ctx *deadlineCtx, d time.Duration) error {
	if ctx.Err() == context.DeadlineExceeded && ctx.parent.Err() == nil {
		return fmt.Errorf("attempt timed out after %s: %w", d, err)
	}
	return err
}

// deadlineCtx is the attempt's context, bounded by the attempt timeout:
// context.WithDeadline(parent, deadline), built only when
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

// recovered turns a panic in the handler into an error (retried, then
// poisoned): it logs the panic r of the handler of msg, with its stack, and
// returns it as a one-line error.
func recovered(r any, handler string, logger *slog.Logger, msg *message.Message) error {
	logger.Error("handler panicked",
		"message_id", msg.UUID, "correlation_id", meta.Correlation(msg),
		"handler", handler, "topic", message.SubscribeTopicFromCtx(msg.Context()),
		"attempt", meta.Attempt(msg.Context()), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return fmt.Errorf("panic: %s", meta.OneLine(fmt.Sprint(r)))
}
