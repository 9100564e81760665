// Command billing is the service of the outbox package's process tests: a
// transactional handler "billing" on $ORDERS_TOPIC that counts its effect
// per event in the table effects and emits PaymentCaptured to
// $PAYMENTS_TOPIC through the outbox, each transaction lasting
// $HANDLE_DELAY; the relay runs in the process. Its
// config comes from the environment (EVENTFX_*), as for any service.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/outbox"
)

// OrderPlaced is the event handled.
type OrderPlaced struct {
	Order string `json:"order"`
	Seq   int    `json:"seq"`
}

// PaymentCaptured is the event emitted.
type PaymentCaptured struct {
	Order string `json:"order"`
	Seq   int    `json:"seq"`
}

func (p PaymentCaptured) EventKey() string { return p.Order }

func main() {
	orders, payments := os.Getenv("ORDERS_TOPIC"), os.Getenv("PAYMENTS_TOPIC")
	// HANDLE_DELAY: how long each transaction lasts, so that a kill finds
	// some in flight.
	delay, _ := time.ParseDuration(os.Getenv("HANDLE_DELAY"))
	err := app.Run(os.Args[1:], func(config.Config) fx.Option {
		return fx.Options(app.KafkaModule, app.PublisherModule, app.OutboxModule, app.SubscriberModule, app.HTTPModule,
			fx.Provide(handlers.AsHandler(func(ob *outbox.Outbox) handlers.Handler {
				return outbox.Handler(ob, "billing", orders, func(ctx context.Context, tx pgx.Tx, e OrderPlaced) error {
					if _, err := tx.Exec(ctx, `INSERT INTO effects (order_id, seq, n) VALUES ($1, $2, 1)
ON CONFLICT (order_id, seq) DO UPDATE SET n = effects.n + 1`, e.Order, e.Seq); err != nil {
						return err
					}
					_, err := ob.Publish(ctx, tx, payments, PaymentCaptured(e))
					time.Sleep(delay)
					return err
				}, handlers.ConsumeByKey(64))
			})),
			fx.Invoke(func(lc fx.Lifecycle) {
				lc.Append(fx.StartHook(func() { fmt.Println("billing running") }))
			}))
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "billing:", err)
		os.Exit(1)
	}
}
