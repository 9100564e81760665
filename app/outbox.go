package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/transport"
	"github.com/eventfx/eventfx/outbox"
)

// OutboxModule provides *outbox.Outbox on the database of outbox.dsn
// (required: PostgreSQL, or "sqlite:PATH" with package outbox/sqlite
// imported) and runs the outbox's relay in the service, which
// publishes through *Publisher: use it beside PublisherModule.
//
// At start it connects, creates the outbox's tables unless
// outbox.skip_schema (a database that does not answer fails the start),
// and starts the relay unless outbox.disabled; at stop the relay lets its
// batches in flight finish, then the pool closes. /readyz checks that the
// database answers ("postgres" or "sqlite"); the metrics of outbox.Metrics are on the
// service's registry. The inbox records of transactional handlers
// (outbox.Handler) older than outbox.inbox_retention are deleted at start
// and then every hour.
var OutboxModule = fx.Module("eventfx.outbox",
	fx.Provide(newOutbox),
	fx.Provide(fx.Annotate(outboxCheck, fx.ResultTags(`group:"eventfx.readiness"`))),
	fx.Invoke(runRelay, cleanInbox),
)

// outboxParams are what newOutbox needs.
type outboxParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Config
	Registry  *prometheus.Registry `optional:"true"`
}

func newOutbox(p outboxParams) (*outbox.Outbox, error) {
	cfg := p.Config.Outbox.WithDefaults()
	ob, err := outbox.Connect(cfg)
	if err != nil {
		return nil, err
	}
	if p.Registry != nil && !p.Config.Observability.Metrics.Disabled {
		if err := p.Registry.Register(ob.Metrics()); err != nil {
			ob.Close()
			return nil, fmt.Errorf("register outbox metrics: %w", err)
		}
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := ob.Ping(ctx, cfg); err != nil {
				return err
			}
			if cfg.SkipSchema {
				return nil
			}
			return ob.CreateSchema(ctx)
		},
		OnStop: func(context.Context) error { ob.Close(); return nil },
	})
	return ob, nil
}

// outboxCheck reports whether the outbox's database answers; the check
// is named after it ("postgres" or "sqlite").
func outboxCheck(o *outbox.Outbox, cfg config.Config) readiness {
	return readiness{name: o.Dialect(), check: func(ctx context.Context) error { return o.Ping(ctx, cfg.Outbox) }}
}

// relayParams are what runRelay needs.
type relayParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Config
	Logger    *slog.Logger
	Outbox    *outbox.Outbox
	Publisher *Publisher
	Transport transport.Transport
}

// runRelay runs the relay from start to stop, unless outbox.disabled.
func runRelay(p relayParams) error {
	if p.Config.Outbox.Disabled {
		return nil
	}
	r, err := outbox.NewRelay(p.Outbox, outbox.RelayParams{
		Config:              p.Config.Outbox,
		Publisher:           p.Publisher,
		PoisonTopic:         p.Config.Poison.Topic,
		Logger:              p.Logger,
		Kafka:               p.Config.Kafka,
		Brokers:             p.Transport.Brokers,
		TransactionalPrefix: p.Config.Service + ".outbox",
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() { defer close(done); _ = r.Run(ctx) }()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-stop.Done():
				return fmt.Errorf("outbox relay: %w", stop.Err())
			}
		},
	})
	return nil
}

// inboxCleanEvery is how often the inbox's old records are deleted.
const inboxCleanEvery = time.Hour

// cleanInbox deletes old inbox records from start to stop.
func cleanInbox(lc fx.Lifecycle, cfg config.Config, logger *slog.Logger, ob *outbox.Outbox) {
	retention := cfg.Outbox.WithDefaults().InboxRetention
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				t := time.NewTicker(inboxCleanEvery)
				defer t.Stop()
				for {
					if n, err := ob.CleanInbox(ctx, retention); err != nil && ctx.Err() == nil {
						logger.Warn("outbox: clean inbox", "error", err)
					} else if n > 0 {
						logger.Debug("outbox: inbox records deleted", "records", n, "retention", retention)
					}
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
				}
			}()
			return nil
		},
		OnStop: func(context.Context) error { cancel(); <-done; return nil },
	})
}
