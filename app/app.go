// Package app assembles eventfx services with go.uber.org/fx: Core (the
// config, the logger, tracing and metrics), a transport (KafkaModule, or
// MemoryModule in unit tests), PublisherModule (*Publisher),
// SubscriberModule (the router of the registered handlers), HTTPModule
// (the ops endpoints), and Run for a main function.
//
//	fx.New(
//		app.Core(cfg),
//		app.KafkaModule,
//		app.SubscriberModule,
//		handlers.Register(handlers.New("billing", "orders", bill)),
//	).Run()
package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/internal/transport"
	"github.com/eventfx/eventfx/router"
)

// Core provides the validated config (defaults applied) and the service's
// *slog.Logger (on stderr, level and format from observability.log; replace
// it with fx.Decorate), and sets fx's stop timeout above shutdown_timeout
// plus the close grace. fx's own logs go through the logger at debug level,
// except a failed start or stop, which is logged once at error level with
// its cause first: a main that calls fx.New(...).Run() says why it exits
// (Run, which returns the error instead, does not log it). An invalid
// config fails fx.New with every bad field listed.
func Core(cfg config.Config) fx.Option {
	return core(cfg, true)
}

// core is Core; report says whether its fx logger logs a failed start or
// stop at error level (see fxLogger).
func core(cfg config.Config, report bool) fx.Option {
	cfg = cfg.WithDefaults()
	logger := newLogger(cfg.Observability.Log, os.Stderr).With("service", cfg.Service)
	// The fx logger is built outside the graph, so it works even when the
	// graph does not (an invalid config, a missing dependency).
	fxLogger := fx.WithLogger(func() fxevent.Logger { return newFxLogger(logger, report) })
	if err := cfg.Validate(); err != nil {
		return fx.Options(fxLogger, fx.Error(err))
	}
	return fx.Options(
		fxLogger,
		fx.Supply(cfg),
		fx.Supply(logger),
		fx.StopTimeout(cfg.ShutdownTimeout+routing.CloseGrace+5*time.Second),
		// Observability is on by default where it is cheap (see config.Observability).
		TracingModule,
		MetricsModule,
	)
}

// KafkaModule provides the Kafka transport: a franz-go producer shared by
// the service and, per handler, a consumer by partition (watermill-kafka)
// or by key, on kafka.brokers or on the process's embedded broker. It is
// started before and closed after everything that uses it; a broker that
// cannot be reached fails the start with the likely causes. /readyz checks
// that a broker answers.
var KafkaModule = fx.Module("eventfx.kafka",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Config, l *slog.Logger) (*kafka.Transport, transport.Transport, error) {
		k, err := kafka.New(cfg, l)
		if err != nil {
			return nil, nil, err
		}
		lc.Append(fx.Hook{OnStart: k.Start, OnStop: func(context.Context) error { return k.Close() }})
		return k, k, nil
	}),
	fx.Provide(fx.Annotate(kafkaCheck, fx.ResultTags(`group:"eventfx.readiness"`))),
	fx.Invoke(announce),
)

// MemoryModule provides the in-memory transport (Watermill's gochannel),
// for unit tests of a team's own logic: no consumer groups (every handler
// gets every message), no partitions, no durability. Test real behaviour
// on the embedded broker (KafkaModule).
var MemoryModule = fx.Module("eventfx.memory",
	fx.Provide(func(lc fx.Lifecycle, l *slog.Logger) transport.Transport {
		m := transport.NewMemory(l)
		lc.Append(fx.Hook{OnStop: func(context.Context) error { return m.Close() }})
		return m
	}),
)

// PublisherModule provides *Publisher.
var PublisherModule = fx.Module("eventfx.publisher", fx.Provide(newPublisher))

// Observe adds observers to every handler's chain (see package router):
// they run after the service's tracing and metrics, in the order given.
// Observers of separate Observe calls run in no set order among
// themselves: give ones whose order matters to one call.
func Observe(observers ...router.Observer) fx.Option {
	return fx.Supply(fx.Annotated{Group: observersGroup, Target: observers})
}

// observersGroup is the fx value group of Observe's observers; the built-in
// observers are named values (tracingObserver, metricsObserver), so their
// order does not depend on the group's.
const observersGroup = "eventfx.observers"

// subscriberParams are what the subscriber module needs.
type subscriberParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Config     config.Config
	Logger     *slog.Logger
	Transport  transport.Transport
	Handlers   []handlers.Handler `group:"eventfx.handlers"`
	// Tracing and Metrics are the built-in observers, when the app has them.
	Tracing   router.Observer     `name:"eventfx.tracing" optional:"true"`
	Metrics   router.Observer     `name:"eventfx.metrics" optional:"true"`
	Observers [][]router.Observer `group:"eventfx.observers"`
}

// observers are the observers of p in their order: tracing, metrics, then
// Observe's.
func (p subscriberParams) observers() []router.Observer {
	var all []router.Observer
	for _, o := range []router.Observer{p.Tracing, p.Metrics} {
		if o != nil {
			all = append(all, o)
		}
	}
	for _, os := range p.Observers {
		all = append(all, os...)
	}
	return all
}

// SubscriberModule runs the registered handlers (handlers.Register,
// handlers.AsHandler) in a router, each in its own consumer group behind
// the chain of package router. Wiring mistakes (duplicate handler names,
// bad topics, loops) fail fx.New. OnStart returns once every handler is
// subscribed; OnStop drains: in-flight handlers finish (up to
// shutdown_timeout), their offsets are committed. A router that dies in the
// background shuts the app down with exit code 1. /readyz checks that
// every handler's consumer group was joined.
var SubscriberModule = fx.Module("eventfx.subscriber",
	fx.Provide(newRouter),
	fx.Provide(fx.Annotate(routerCheck, fx.ResultTags(`group:"eventfx.readiness"`))),
	fx.Invoke(func(*routing.Router) {}),
)

// newRouter builds the router of the registered handlers and ties it to
// the lifecycle.
func newRouter(p subscriberParams) (*routing.Router, error) {
	if len(p.Handlers) == 0 {
		// Most often a constructor provided without handlers.AsHandler:
		// fx takes it for a value nobody asks for.
		p.Logger.Warn("subscriber: no handlers registered, so nothing is consumed; register them with handlers.Register, " +
			"or fx.Provide(handlers.AsHandler(constructor)) for one that needs dependencies")
	}
	r, err := routing.New(routing.Params{
		Config:        p.Config,
		Logger:        p.Logger,
		Handlers:      p.Handlers,
		NewSubscriber: p.Transport.Subscriber,
		Publisher:     p.Transport.Publisher(),
		Observers:     p.observers(),
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			return r.Start(ctx, func(err error) {
				p.Logger.Error("router stopped unexpectedly; shutting down", "error", err)
				_ = p.Shutdowner.Shutdown(fx.ExitCode(1))
			})
		},
		OnStop: r.Stop,
	})
	return r, nil
}

// newLogger returns a logger writing to w at the configured level, as text
// or JSON. An unknown level means info (Validate reports it).
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
