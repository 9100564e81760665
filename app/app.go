// Package app assembles eventfx services with go.uber.org/fx: the core
// (config, logger), a transport (Kafka or in-memory), the Publisher and the
// Subscriber modules, and Run for a main function.
//
//	fx.New(
//		app.Core(cfg),
//		app.Kafka,
//		app.Subscriber,
//		handlers.Register(handlers.New("billing", "orders", bill)),
//	).Run()
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
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
	logger := NewLogger(cfg.Observability.Log, os.Stderr).With("service", cfg.Service)
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
		fx.StopTimeout(cfg.ShutdownTimeout+router.CloseGrace+5*time.Second),
		// Observability is on by default where it is cheap (see config.Observability).
		TracingModule,
		MetricsModule,
	)
}

// KafkaModule provides the Kafka transport (see Kafka), started before
// and closed after everything that uses it.
var KafkaModule = fx.Module("eventfx.kafka",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Config, l *slog.Logger) Transport {
		k := NewKafka(cfg, l)
		lc.Append(fx.Hook{OnStart: k.Start, OnStop: func(context.Context) error { return k.Close() }})
		return k
	}),
	fx.Provide(fx.Annotate(kafkaCheck, fx.ResultTags(`group:"eventfx.readiness"`))),
)

// MemoryModule provides the in-memory transport, for unit tests.
var MemoryModule = fx.Module("eventfx.memory",
	fx.Provide(func(lc fx.Lifecycle, l *slog.Logger) Transport {
		m := NewMemory(l)
		lc.Append(fx.Hook{OnStop: func(context.Context) error { return m.Close() }})
		return m
	}),
)

// PublisherModule provides *Publisher.
var PublisherModule = fx.Module("eventfx.publisher", fx.Provide(newPublisher))

// SubscriberParams are what the subscriber module needs.
type SubscriberParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Config     config.Config
	Logger     *slog.Logger
	Transport  Transport
	Handlers   []handlers.Handler `group:"eventfx.handlers"`
	Observers  []router.Observer  `group:"eventfx.observers"`
}

// SubscriberModule runs the registered handlers (handlers.Register,
// handlers.AsHandler) in a router with the standard middleware chain.
// OnStart returns once every handler is subscribed; OnStop drains (see
// router.Router.Shutdown). A router that dies in the background shuts the
// app down with exit code 1.
var SubscriberModule = fx.Module("eventfx.subscriber",
	fx.Provide(NewSubscriber),
	fx.Provide(fx.Annotate(routerCheck, fx.ResultTags(`group:"eventfx.readiness"`))),
	fx.Invoke(func(*router.Router) {}),
)

// NewSubscriber builds the router of the registered handlers and ties it to
// the lifecycle. Duplicate handler names fail here, hence fx.New.
func NewSubscriber(p SubscriberParams) (*router.Router, error) {
	r, err := router.New(router.Params{
		Config:        p.Config,
		Logger:        p.Logger,
		Handlers:      p.Handlers,
		NewSubscriber: p.Transport.Subscriber,
		Publisher:     p.Transport.Publisher(),
		Observers:     p.Observers,
	})
	if err != nil {
		return nil, err
	}
	runErr := make(chan error, 1)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			go func() {
				err := r.Run(context.Background())
				select {
				case <-r.Stopping():
					runErr <- err
					return
				default:
				}
				if err == nil {
					err = errors.New("all handlers stopped")
				}
				select {
				case <-r.Running():
				default:
					runErr <- err // OnStart reports it
					return
				}
				p.Logger.Error("router stopped unexpectedly; shutting down", "error", err)
				runErr <- err
				_ = p.Shutdowner.Shutdown(fx.ExitCode(1))
			}()
			select {
			case <-r.Running():
				return nil
			case err := <-runErr:
				return fmt.Errorf("start router: %w", err)
			case <-ctx.Done():
				return fmt.Errorf("start router: %w", ctx.Err())
			}
		},
		OnStop: func(ctx context.Context) error {
			p.Logger.Info("stopping: draining in-flight messages", "timeout", p.Config.ShutdownTimeout)
			if err := r.Shutdown(ctx); err != nil {
				return err
			}
			p.Logger.Info("stopped: offsets committed")
			return nil
		},
	})
	return r, nil
}

// NewLogger returns a logger writing to w at the configured level, as text
// or JSON. An unknown level means info (Validate reports it).
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
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
