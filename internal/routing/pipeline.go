package routing

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/router"
)

// Chain is the whole middleware chain of one handler as one middleware:
// the handler it wraps is step 7, and what the handler returns is published
// to h.PublishTopic within the attempt (pub, wrapped by the observers'
// Publish). pub also receives the poisoned messages.
//
// The steps, in the order package router documents (a contract: changing it changes
// how often a message is tried and what is poisoned), are those of
// pipeline.handle. They run in one function rather than as a stack of
// middleware: Watermill runs each message on a new goroutine, and the
// frames of ten middleware layers made every one of them grow its stack
// (copystack was a fifth of the router's CPU).
func Chain(cfg config.Config, h handlers.Handler, group string, pub message.Publisher, logger *slog.Logger, observers ...router.Observer) message.HandlerMiddleware {
	cfg = cfg.WithDefaults()
	info := router.HandlerInfo{Name: h.Name, Topic: h.Topic, PublishTopic: h.PublishTopic, ConsumerGroup: group}
	p := &pipeline{
		name:   h.Name,
		group:  group,
		retry:  newRetrier(cfg.Retry.Override(h.Retry), h.Name, logger),
		poison: poisoner{Topic: cfg.Poison.Topic, Handler: h.Name, ConsumerGroup: group, Service: cfg.Service, Publisher: pub, Logger: logger},
		logger: logger,
		debug:  logger.Enabled(context.Background(), slog.LevelDebug),
		// The handler's logger: the service's, with the handler's name.
		handlerLogger: logger.With("handler", h.Name),
		timeout:       cfg.Retry.Override(h.Retry).AttemptTimeout,
	}
	emitPub := pub
	for _, o := range observers {
		hooks := o(info)
		if hooks.Context != nil {
			p.context = chainContext(p.context, hooks.Context)
		}
		p.add(hooks)
		if hooks.Publish != nil {
			emitPub = hooks.Publish(emitPub)
		}
	}
	p.emit = emitter{topic: h.PublishTopic, pub: emitPub}
	p.emitted = p.emit.emit
	return func(fn message.HandlerFunc) message.HandlerFunc {
		q := *p
		q.fn = fn
		q.stack = &stackGauge{}
		return q.run
	}
}

// chainContext derives the delivery context with first, then with next
// (router.Hooks.Context): each observer derives from the previous one's.
func chainContext(first, next func(context.Context, *message.Message) context.Context) func(context.Context, *message.Message) context.Context {
	if first == nil {
		return next
	}
	return func(ctx context.Context, msg *message.Message) context.Context {
		return next(first(ctx, msg), msg)
	}
}

// pipeline is the chain of one handler.
type pipeline struct {
	name  string
	group string // the handler's consumer group
	fn    message.HandlerFunc
	emit  emitter
	// emitted is emit.emit, made once: the delivery context carries it
	// (meta.Emit) for handlers that publish within the attempt themselves.
	emitted func(context.Context, []*message.Message) error
	retry   retrier
	poison  poisoner
	timeout time.Duration
	logger  *slog.Logger
	// handlerLogger is logger with the handler's name, for the handler
	// itself (handlers.Logger).
	handlerLogger *slog.Logger
	debug         bool
	context       func(context.Context, *message.Message) context.Context
	// stack learns how much stack fn needs (see stackGauge).
	stack *stackGauge

	// The observers' hooks; the ending ones in reverse order.
	received       []func(*message.Message)
	delivered      []func(*message.Message, router.Outcome, int)
	attemptStarted []func(*message.Message, int)
	attemptEnded   []func(*message.Message, int, time.Duration, error)
}

func (p *pipeline) add(h router.Hooks) {
	if h.Received != nil {
		p.received = append(p.received, h.Received)
	}
	if h.Delivered != nil {
		p.delivered = append([]func(*message.Message, router.Outcome, int){h.Delivered}, p.delivered...)
	}
	if h.AttemptStarted != nil {
		p.attemptStarted = append(p.attemptStarted, h.AttemptStarted)
	}
	if h.AttemptEnded != nil {
		p.attemptEnded = append([]func(*message.Message, int, time.Duration, error){h.AttemptEnded}, p.attemptEnded...)
	}
}

// run runs the chain for one message (handle) on a stack grown first to
// what the handler needs (stackGauge): in the chain's first frame, a small
// one, the stack the runtime copies holds the fewest frames.
func (p *pipeline) run(msg *message.Message) ([]*message.Message, error) {
	level := p.stack.next()
	if level > 0 {
		growStack(level)
	}
	mark := stackMark()
	produced, err := p.handle(msg)
	p.stack.observe(level, stackMark() != mark)
	return produced, err
}

// handle runs the chain for one message. Steps 0 to 4; each attempt is
// steps 4b to 7 (attempt); the failure path (retries, 3b, 3) is failed.
// The hot path's frames are kept small (see Chain).
func (p *pipeline) handle(msg *message.Message) ([]*message.Message, error) {
	// 0. Targeted replay: a replayed message for another consumer group
	// (meta.ReplayFor) was handled by this handler the first time; it is
	// acknowledged without running anything else, observers included.
	if to := msg.Metadata.Get(meta.ReplayFor); to != "" && to != p.group {
		p.skip(msg, to)
		return nil, nil
	}
	// 1. Correlation ID: the incoming one, or, when there is none, the
	// message's own ID (meta.Correlation), read where it is needed rather
	// than written into the message: a message without a correlation ID
	// has an empty header map, and the first entry cost an allocation of
	// a quarter of a kilobyte. Only a message without an ID is given one.
	// The delivery context carries the message (handlers' accessors, the
	// Publisher: what the handler publishes inherits the ID) and the
	// attempt number.
	if msg.UUID == "" {
		correlate(msg)
	}
	orig := msg.Context()
	d := &delivery{}
	d.Init(orig, msg, p.name, p.handlerLogger, p.context)
	d.SetEmit(p.emitted)
	msg.SetContext(&d.Delivery)
	// 2. Tracing and metrics of the delivery.
	for _, f := range p.received {
		f(msg)
	}
	var start time.Time
	if p.debug {
		start = time.Now()
	}
	attempts, outcome := 1, router.Succeeded
	err := p.attempt(msg, d, 1)
	if err != nil {
		attempts, outcome, err = p.failed(msg, d, err, start)
	} else if p.debug {
		logHandled(p.logger, p.name, msg, start, nil)
	}
	for _, f := range p.delivered {
		f(msg, outcome, attempts)
	}
	msg.SetContext(orig)
	return nil, err
}

// skip logs, at debug level, that msg, replayed for the consumer group
// to, is not for this handler.
func (p *pipeline) skip(msg *message.Message, to string) {
	if p.debug {
		p.logger.Debug("replayed message skipped: for another consumer group",
			"message_id", msg.UUID, "correlation_id", meta.Correlation(msg),
			"handler", p.name, "topic", message.SubscribeTopicFromCtx(msg.Context()),
			"consumer_group", p.group, "replay_for", to)
	}
}

// failed carries on after the first attempt failed with err: retries, the
// debug log, the poison queue.
func (p *pipeline) failed(msg *message.Message, d *delivery, err error, start time.Time) (int, router.Outcome, error) {
	// 4. Retry with exponential backoff and jitter; permanent errors skip it.
	attempts, err := p.retry.retry(msg, &d.Delivery, err, func(n int) error { return p.attempt(msg, d, n) })
	if err == nil {
		if p.debug {
			logHandled(p.logger, p.name, msg, start, nil)
		}
		return attempts, router.Succeeded, nil
	}
	err = &AttemptsError{Err: err, Attempts: attempts}
	// 3b. Debug log of the handling's result.
	if p.debug {
		logHandled(p.logger, p.name, msg, start, err)
	}
	// 3. Poison queue: outside retry, so it sees only the final failure.
	switch err = p.poison.poison(msg, err); {
	case err == nil:
		return attempts, router.Poisoned, nil
	case errors.Is(err, ErrInterrupted):
		return attempts, router.Interrupted, err
	default:
		return attempts, router.Failed, err
	}
}

// delivery is what the chain allocates for a message: its context, and
// the first attempt's deadline (most messages need no other).
type delivery struct {
	meta.Delivery
	first deadlineCtx
}

// clockEpoch is the origin of the attempts' clock readings. It carries a
// monotonic reading, so a deadline clockEpoch.Add(d) is measured on the
// monotonic clock, as context.WithTimeout's are.
var clockEpoch = time.Now()

// attempt is one attempt: steps 4b to 7.
func (p *pipeline) attempt(msg *message.Message, d *delivery, n int) error {
	d.SetAttempt(n)
	msg.SetContext(&d.Delivery)
	// 4b. Tracing and metrics of each attempt.
	for _, f := range p.attemptStarted {
		f(msg, n)
	}
	ctx := msg.Context()
	// One clock read for the observers and the deadline: the monotonic
	// clock, as a duration since clockEpoch (time.Now reads two clocks).
	var start time.Duration
	if len(p.attemptEnded) > 0 || p.timeout > 0 {
		start = time.Since(clockEpoch)
	}
	// 5. Per-attempt timeout, inside retry so each attempt gets its own.
	var deadline *deadlineCtx
	if p.timeout > 0 {
		if n == 1 {
			deadline = &d.first
		} else {
			deadline = &deadlineCtx{}
		}
		deadline.parent, deadline.deadline = ctx, clockEpoch.Add(start+p.timeout)
		msg.SetContext(deadline)
	}
	err := p.call(msg)
	if deadline != nil {
		deadline.cancel()
		if err != nil {
			err = timedOut(err, deadline, p.timeout)
		}
	}
	msg.SetContext(ctx)
	if len(p.attemptEnded) > 0 {
		took := time.Since(clockEpoch) - start
		for _, f := range p.attemptEnded {
			f(msg, n, took, err)
		}
	}
	return err
}

// call is steps 6 and 7: the handler, and the publish of what it emits,
// with panics turned into errors.
func (p *pipeline) call(msg *message.Message) (err error) {
	// 6. Panic recoverer: a panic is an error like any other.
	defer func() {
		if r := recover(); r != nil {
			err = recovered(r, p.name, p.logger, msg)
		}
	}()
	// 7. The handler, and the publish of what it emits, within the
	// attempt: Watermill would publish outside the chain, where a failure
	// is nacked and resent forever, beyond retry and poison.
	produced, err := p.fn(msg)
	if err == nil && len(produced) > 0 {
		err = p.emit.emit(msg.Context(), produced)
	}
	return err
}
