// Command subscriber is eventfx's Kafka → HTTP webhook relay: each route of
// subscriber.routes in the config is a handler, named after the route, that
// consumes the route's topic in its own consumer group and POSTs every
// message to the route's webhook (see internal/webhook for the headers,
// signatures and how answers are classified). It serves /healthz, /readyz
// and /metrics on http.addr.
//
//	subscriber --config subscriber.yaml
//
// SIGINT or SIGTERM stops it gracefully: in-flight deliveries finish (up to
// shutdown_timeout), their offsets are committed, and it exits 0.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/webhook"
	"github.com/eventfx/eventfx/schema"
)

func main() {
	if err := app.Run(os.Args[1:], build); err != nil {
		fmt.Fprintln(os.Stderr, "subscriber:", err)
		os.Exit(1)
	}
}

// errNoRoutes stops a subscriber that would relay nothing.
var errNoRoutes = errors.New("subscriber.routes: at least one route is required")

// build returns the modules of the relay for cfg: one webhook handler per
// route, sharing one HTTP client whose idle connections close at stop.
func build(cfg config.Config) fx.Option {
	if len(cfg.Subscriber.Routes) == 0 {
		return fail(errNoRoutes)
	}
	client := webhook.NewClient()
	reg, err := decodingRegistry(cfg)
	if err != nil {
		return fail(err)
	}
	hs := make([]handlers.Handler, 0, len(cfg.Subscriber.Routes))
	var errs []error
	for i, r := range cfg.Subscriber.Routes {
		h, err := webhook.New(r, client, webhook.WithRegistry(reg))
		if err != nil {
			errs = append(errs, fmt.Errorf("subscriber.routes[%d]: %w", i, err))
			continue
		}
		hs = append(hs, h)
	}
	if err := errors.Join(errs...); err != nil {
		if reg != nil {
			reg.Close()
		}
		return fail(err)
	}
	ready := fx.Options()
	if reg != nil {
		ready = app.ReadinessCheck("schema_registry", reg.Ping)
	}
	return fx.Options(
		ready,
		app.KafkaModule,
		app.SubscriberModule,
		app.HTTPModule,
		handlers.Register(hs...),
		fx.Invoke(func(lc fx.Lifecycle, l *slog.Logger) {
			for _, r := range cfg.Subscriber.Routes {
				// The URL is left out: its query or user info may hold a credential.
				l.Info("route", "handler", r.Name, "topic", r.Topic,
					"timeout", r.Webhook.Timeout, "signed", r.Webhook.Secret != "")
			}
			lc.Append(fx.StopHook(client.CloseIdleConnections))
			if reg != nil {
				lc.Append(fx.StopHook(reg.Close))
			}
		}),
	)
}

// decodingRegistry returns the schema registry of the routes with decode:
// json, or nil when no route decodes.
func decodingRegistry(cfg config.Config) (*schema.Registry, error) {
	for _, r := range cfg.Subscriber.Routes {
		if r.Decode == config.DecodeJSON {
			return schema.New(cfg)
		}
	}
	return nil, nil
}

// fail makes fx.New fail with err alone. (fx.Error would also make fx
// report that Core's logger cannot be built.)
func fail(err error) fx.Option {
	return fx.Invoke(func() error { return err })
}
