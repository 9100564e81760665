package app_test

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
)

type OrderPlaced struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// quiet is a service's config that logs only errors, on the embedded
// broker (the default).
func quiet(service string) config.Config {
	cfg, err := config.LoadYAML([]byte("service: "+service+"\nobservability: {log: {level: error}}\n"), nil)
	if err != nil {
		panic(err)
	}
	return cfg
}

// A service is fx.New of app.Core and the modules it needs: here a
// subscriber with one handler and a publisher, on the embedded broker.
func ExampleCore() {
	billed := make(chan struct{})
	bill := func(ctx context.Context, o OrderPlaced) error {
		fmt.Printf("billing %s: %d\n", o.ID, o.Amount)
		close(billed)
		return nil
	}
	var pub *app.Publisher
	a := fx.New(
		app.Core(quiet("billing")), // config, logger, metrics, tracing
		app.KafkaModule,            // the transport: here the embedded broker
		app.PublisherModule,        // *app.Publisher
		app.SubscriberModule,       // the router and its middleware chain
		handlers.Register(handlers.New("billing", "orders", bill)),
		fx.Populate(&pub),
	)
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		return // app.Core's logger said why
	}
	defer a.Stop(ctx)

	if _, err := pub.PublishEvent(ctx, "orders", OrderPlaced{ID: "o-1", Amount: 4200}); err != nil {
		fmt.Println(err)
		return
	}
	<-billed
	// Output: billing o-1: 4200
}

// app.Run is a whole main: config from --config and EVENTFX_* variables,
// signals, a graceful stop, the exit code. Here the service stops itself
// once its handler ran (fx.Shutdowner); a real one runs until SIGTERM.
func ExampleRun() {
	os.Setenv("EVENTFX_OBSERVABILITY_LOG_LEVEL", "error")
	defer os.Unsetenv("EVENTFX_OBSERVABILITY_LOG_LEVEL")

	err := app.Run(nil, func(config.Config) fx.Option {
		return fx.Options(
			app.KafkaModule,
			app.PublisherModule,
			app.SubscriberModule,
			fx.Provide(handlers.AsHandler(func(s fx.Shutdowner) handlers.Handler {
				return handlers.New("audit", "orders", func(ctx context.Context, o OrderPlaced) error {
					fmt.Println("audited", o.ID)
					return s.Shutdown()
				})
			})),
			fx.Invoke(func(lc fx.Lifecycle, pub *app.Publisher) {
				lc.Append(fx.StartHook(func(ctx context.Context) error {
					_, err := pub.PublishEvent(ctx, "orders", OrderPlaced{ID: "o-2", Amount: 1})
					return err
				}))
			}),
		)
	})
	if err != nil {
		fmt.Println("audit:", err) // main prints it and exits 1
	}
	// Output: audited o-2
}
