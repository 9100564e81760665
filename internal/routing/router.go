// Package router builds eventfx's Watermill router: each registered
// handlers.Handler in its own consumer group, behind the standard
// middleware chain, taking its messages through one Watermill handler per
// processor (see intakes), with a graceful drain at shutdown.
package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/intake"
	"github.com/eventfx/eventfx/internal/transport"
	"github.com/eventfx/eventfx/internal/wmlog"
	"github.com/eventfx/eventfx/router"
)

// Spec is the transport.Spec of handler h in a service configured by cfg:
// its consumer group and its own overrides; the transport fills in the
// rest from its config.
func Spec(cfg config.Config, h handlers.Handler) transport.Spec {
	return transport.Spec{ConsumerGroup: ConsumerGroup(cfg, h.Name), Consume: h.Consume, MaxInFlight: h.MaxInFlight}
}

// Params are what New needs.
type Params struct {
	// Config is the service's; New applies its defaults.
	Config   config.Config
	Logger   *slog.Logger
	Handlers []handlers.Handler
	// NewSubscriber creates each handler's subscriber.
	NewSubscriber func(transport.Spec) (transport.Subscriber, error)
	// Publisher publishes emitted events and poisoned messages. The router
	// never closes it.
	Publisher message.Publisher
	// Observers instrument every handler, in order.
	Observers []router.Observer
}

// CloseGrace bounds closing the router after the drain: cancelled handlers
// return, consumers commit their offsets and leave their groups.
const CloseGrace = 10 * time.Second

// Router runs the handlers. Run it once; stop it with Shutdown.
type Router struct {
	router   *message.Router
	subs     []transport.Subscriber
	logger   *slog.Logger
	shutdown time.Duration
	stopping chan struct{}
	stopOnce sync.Once
}

// ConsumerGroup is the consumer group of a handler:
// "<kafka.consumer_group or service>.<handler>".
func ConsumerGroup(cfg config.Config, handler string) string {
	prefix := cfg.Kafka.ConsumerGroup
	if prefix == "" {
		prefix = cfg.Service
	}
	return prefix + "." + handler
}

// New builds the router. It reports every wiring mistake (duplicate or
// missing handler names, bad topics) as an error, and does no I/O.
func New(p Params) (*Router, error) {
	p.Config = p.Config.WithDefaults()
	if err := checkHandlers(p.Handlers); err != nil {
		return nil, err
	}
	if err := checkLoops(p.Handlers, p.Config.Poison.Topic); err != nil {
		return nil, err
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	wr, err := message.NewRouter(message.RouterConfig{CloseTimeout: CloseGrace}, wmlog.New(p.Logger))
	if err != nil {
		return nil, fmt.Errorf("create router: %w", err)
	}
	r := &Router{router: wr, logger: p.Logger, shutdown: p.Config.ShutdownTimeout, stopping: make(chan struct{})}
	pub := unclosable{p.Publisher}
	// Watermill's handler names must be unique: a handler's extra intakes
	// get "#2", "#3"..., which no handler's name can hold (validName).
	for _, h := range p.Handlers {
		spec := Spec(p.Config, h)
		group := spec.ConsumerGroup
		sub, err := p.NewSubscriber(spec)
		if err != nil {
			return nil, fmt.Errorf("handler %q: subscriber: %w", h.Name, err)
		}
		r.subs = append(r.subs, sub)
		// The chain returns no messages (it publishes what the handler
		// emits itself), so Watermill's publisher is never used; AddHandler,
		// not AddConsumerHandler, saves a wrapper per message.
		fn := Chain(p.Config, h, group, pub, p.Logger, p.Observers...)(h.Func)
		for i, in := range intakes(sub) {
			name := h.Name
			if i > 0 {
				name = fmt.Sprintf("%s#%d", h.Name, i+1)
			}
			wr.AddHandler(name, h.Topic, in, "", noPublisher{}, fn)
		}
	}
	return r, nil
}

// checkLoops reports every handler that emits to its own topic or to the
// poison topic: each of its events would come back to it, or go where
// only failures belong.
func checkLoops(hs []handlers.Handler, poisonTopic string) error {
	var errs []error
	for _, h := range hs {
		switch h.PublishTopic {
		case "":
		case h.Topic:
			errs = append(errs, fmt.Errorf("handler %q emits to %q, the topic it consumes: every event it emits would come back to it", h.Name, h.Topic))
		case poisonTopic:
			errs = append(errs, fmt.Errorf("handler %q emits to %q, the poison topic (poison.topic): only failed messages go there", h.Name, poisonTopic))
		}
	}
	return errors.Join(errs...)
}

// intakes are the subscribers of a handler's Watermill handlers, one per
// processor (at most maxIntakes), all sharing sub's one subscription and
// its channel.
//
// Watermill's router takes a handler's messages on one goroutine, which
// adds the handler's context values and passes each message to another
// that starts a goroutine per message: every message of the handler goes
// through that pair, one at a time, and the pair hands over to each other
// on one core while the others idle. With a Watermill handler per
// processor receiving from the same channel, the intake runs on every
// core. It changes no ordering: Watermill runs each message on a goroutine
// of its own anyway, and the subscribers that keep an order (a partition's
// or a key's) send the next message only once the previous one is acked.
func intakes(sub message.Subscriber) []message.Subscriber {
	return intake.Share(sub, min(max(runtime.GOMAXPROCS(0), 1), maxIntakes))
}

// maxIntakes bounds a handler's intakes: each is three idle goroutines
// between messages, and eight take several hundred thousand messages a
// second, beyond what a handler's chain does on as many cores.
const maxIntakes = 8

// Joined reports every handler whose subscriber has not joined its
// consumer group yet (transport.Subscriber.Joined).
func (r *Router) Joined() error {
	var errs []error
	for _, s := range r.subs {
		errs = append(errs, s.Joined())
	}
	return errors.Join(errs...)
}

// Run runs the handlers until Shutdown; it returns once they all stopped.
// An error, or a return before Shutdown was called, means the router died.
func (r *Router) Run(ctx context.Context) error {
	return r.router.Run(ctx)
}

// Running is closed once every handler is subscribed.
func (r *Router) Running() <-chan struct{} { return r.router.Running() }

// Stopping is closed when Shutdown starts.
func (r *Router) Stopping() <-chan struct{} { return r.stopping }

// Shutdown stops the handlers gracefully: subscribers stop taking new
// messages, in-flight handlers finish and their offsets are marked (up to
// the config's shutdown_timeout, or ctx's deadline if sooner), then the
// router closes, which commits (up to CloseGrace more). Messages still in flight when the time is
// up are cancelled and nacked — never poisoned — and delivered again after
// the restart.
func (r *Router) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stopping) })
	if r.shutdown > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.shutdown)
		defer cancel()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(r.subs))
	for i, s := range r.subs {
		wg.Go(func() { errs[i] = s.Drain(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.logger.Warn("drain incomplete: in-flight messages will be cancelled and redelivered after restart", "error", err)
	}
	err := r.router.Close()
	if err != nil {
		err = fmt.Errorf("close router: %w", err)
	}
	// Watermill closes a handler's subscriber only if the handler's
	// closing goroutine sees the router close before its context's
	// cancellation (a select between the two); the subscribers close on
	// that cancellation too, but their clients are released for sure here.
	// Close is idempotent on every eventfx subscriber.
	for _, s := range r.subs {
		if cerr := s.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close subscriber: %w", cerr))
		}
	}
	return err
}

// Start runs the router in the background and returns once every handler
// is subscribed, or with the error that kept it from starting. A router
// that dies after it started (an error, or every handler stopped, before
// Stop) calls died with why.
func (r *Router) Start(ctx context.Context, died func(error)) error {
	runErr := make(chan error, 1)
	go func() {
		err := r.Run(context.Background())
		select {
		case <-r.Stopping():
			return
		default:
		}
		if err == nil {
			err = errors.New("all handlers stopped")
		}
		select {
		case <-r.Running():
			died(err)
		default:
			runErr <- err // Start reports it
		}
	}()
	select {
	case <-r.Running():
		return nil
	case err := <-runErr:
		return fmt.Errorf("start router: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("start router: %w", ctx.Err())
	}
}

// Stop is Shutdown, logged: the drain's start and, when every offset was
// committed, its end.
func (r *Router) Stop(ctx context.Context) error {
	r.logger.Info("stopping: draining in-flight messages", "timeout", r.shutdown)
	if err := r.Shutdown(ctx); err != nil {
		return err
	}
	r.logger.Info("stopped: offsets committed")
	return nil
}

// noPublisher is Watermill's publisher of every handler: Emit publishes
// inside the chain and leaves nothing for it.
type noPublisher struct{}

func (noPublisher) Publish(topic string, msgs ...*message.Message) error {
	return fmt.Errorf("eventfx: %d message(s) left for Watermill to publish to %q (Emit publishes them)", len(msgs), topic)
}

func (noPublisher) Close() error { return nil }

// unclosable shields the shared publisher from the router, which closes a
// handler's publisher when the handler stops; its owner closes it once, last.
type unclosable struct{ message.Publisher }

func (unclosable) Close() error { return nil }
