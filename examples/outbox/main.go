// Outbox: an orders service writes its order row and OrderPlaced in one
// transaction; a billing service with a transactional handler records the
// payment and emits PaymentCaptured through the outbox, in the
// transaction of its inbox record. An order that fails validation rolls
// back and announces nothing; an OrderPlaced delivered twice is charged
// once. The services run in one process on the embedded Kafka broker,
// each with its outbox relay. With nothing set, each service has its own
// embedded SQLite database (in memory); with outbox.dsn, both run on that
// database, PostgreSQL for instance:
//
//	go run ./examples/outbox
//	EVENTFX_OUTBOX_DSN=postgres://user:password@127.0.0.1:5432/shop go run ./examples/outbox
//
// The code is the database/sql API of the outbox (TxSQL, PublishSQL,
// HandlerSQL), which speaks both stores.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/outbox"
	_ "github.com/eventfx/eventfx/outbox/sqlite" // the embedded store
)

const (
	ordersTopic   = "orders"
	paymentsTopic = "payments"
)

// OrderPlaced is the orders service's event.
type OrderPlaced struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

func (o OrderPlaced) EventKey() string { return o.ID }

// PaymentCaptured is the billing service's event.
type PaymentCaptured struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

func (p PaymentCaptured) EventKey() string { return p.OrderID }

// errNotStarted: a service did not start; app.Core's logger said why.
var errNotStarted = errors.New("a service did not start")

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "give up if the story has not ended by then")
	flag.Parse()
	if err := run(os.Stdout, *timeout); err != nil {
		if !errors.Is(err, errNotStarted) {
			fmt.Fprintln(os.Stderr, "outbox example:", err)
		}
		os.Exit(1)
	}
}

// placeOrder is the orders service's business transaction: the order row
// and its event commit together, or neither does.
func placeOrder(ctx context.Context, ob *outbox.Outbox, run string, o OrderPlaced) error {
	return ob.TxSQL(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, amount) VALUES ($1, $2)", o.ID, o.Amount); err != nil {
			return err
		}
		if _, err := ob.PublishSQL(ctx, tx, ordersTopic, o, app.WithID(messageID(run, o.ID))); err != nil {
			return err
		}
		if o.Amount <= 0 {
			return fmt.Errorf("order %s: amount must be positive, got %d", o.ID, o.Amount)
		}
		return nil
	})
}

// messageID is the ID of the OrderPlaced of order id in this run of the
// example (the inbox remembers the IDs of earlier runs).
func messageID(run, id string) string { return "placed-" + run + "-" + id }

// billing records the payment and emits PaymentCaptured, both in the
// transaction of the inbox record: once per OrderPlaced message.
func billing(out io.Writer) fx.Option {
	return fx.Provide(handlers.AsHandler(func(ob *outbox.Outbox) handlers.Handler {
		return outbox.HandlerSQL(ob, "billing", ordersTopic, func(ctx context.Context, tx *sql.Tx, o OrderPlaced) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO payments (order_id, amount) VALUES ($1, $2)", o.ID, o.Amount); err != nil {
				return err
			}
			fmt.Fprintf(out, "[billing]  %s: captured %d (message %s, correlation_id=%s)\n", o.ID, o.Amount, handlers.MessageID(ctx), handlers.CorrelationID(ctx))
			_, err := ob.PublishSQL(ctx, tx, paymentsTopic, PaymentCaptured{OrderID: o.ID, Amount: o.Amount})
			return err
		})
	}))
}

func run(out io.Writer, timeout time.Duration) error {
	cfg, err := config.Load("")
	if err != nil {
		return err
	}
	if cfg.Outbox.DSN == "" {
		cfg.Outbox.DSN = "sqlite::memory:" // one database per service
		fmt.Fprintln(out, "(on the embedded SQLite store; set EVENTFX_OUTBOX_DSN to run on PostgreSQL)")
	}
	cfg.Outbox.PollInterval = 200 * time.Millisecond
	service := func(name string) config.Config { c := cfg; c.Service = name; return c }

	captured := make(chan PaymentCaptured, 16)
	ledger := handlers.New("ledger", paymentsTopic, func(_ context.Context, p PaymentCaptured) error {
		captured <- p
		return nil
	})
	var orders, billingOutbox *outbox.Outbox
	var pub *app.Publisher
	var billingMetrics *prometheus.Registry
	apps := []*fx.App{
		fx.New(app.Core(service("orders")), app.KafkaModule, app.PublisherModule, app.OutboxModule, fx.Populate(&orders, &pub)),
		fx.New(app.Core(service("billing")), app.KafkaModule, app.PublisherModule, app.OutboxModule, app.SubscriberModule,
			billing(out), fx.Populate(&billingOutbox, &billingMetrics)),
		fx.New(app.Core(service("ledger")), app.KafkaModule, app.SubscriberModule, handlers.Register(ledger)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, a := range apps {
		if err := a.Start(ctx); err != nil {
			return errNotStarted
		}
	}
	defer stopAll(apps)
	// Each service's own table, in its database.
	for _, ddl := range []struct {
		db  *sql.DB
		sql string
	}{
		{orders.DB(), "CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, amount int NOT NULL)"},
		{orders.DB(), "DELETE FROM orders"},
		{billingOutbox.DB(), "CREATE TABLE IF NOT EXISTS payments (order_id text PRIMARY KEY, amount int NOT NULL)"},
		{billingOutbox.DB(), "DELETE FROM payments"},
	} {
		if _, err := ddl.db.ExecContext(ctx, ddl.sql); err != nil {
			return err
		}
	}

	run := time.Now().UTC().Format("20060102T150405.000")
	fmt.Fprintln(out, "== 1. The orders service places three orders, each row and its OrderPlaced in one transaction")
	for _, o := range []OrderPlaced{{ID: "o-1", Amount: 4200}, {ID: "o-2", Amount: -5}, {ID: "o-3", Amount: 1999}} {
		if err := placeOrder(ctx, orders, run, o); err != nil {
			fmt.Fprintf(out, "[orders]   %s rolled back: %v (no row, no event)\n", o.ID, err)
			continue
		}
		fmt.Fprintf(out, "[orders]   %s committed with its event\n", o.ID)
	}
	if err := waitPayments(ctx, out, captured, 2); err != nil {
		return err
	}

	fmt.Fprintln(out, "== 2. OrderPlaced of o-1 arrives again (a producer's retry, same message ID): billing skips it")
	o1 := OrderPlaced{ID: "o-1", Amount: 4200}
	if _, err := pub.PublishEvent(ctx, ordersTopic, o1, app.WithID(messageID(run, "o-1"))); err != nil {
		return err
	}
	for duplicates(billingMetrics) < 1 {
		select {
		case <-ctx.Done():
			return errors.New("billing did not see the repeated OrderPlaced")
		case <-time.After(20 * time.Millisecond):
		}
	}
	var rows, total int
	if err := billingOutbox.DB().QueryRowContext(ctx, "SELECT count(*), COALESCE(sum(amount), 0) FROM payments").Scan(&rows, &total); err != nil {
		return err
	}
	if rows != 2 {
		return fmt.Errorf("want 2 payments, have %d", rows)
	}
	fmt.Fprintf(out, "[billing]  skipped the repeat; payments: %d rows, %d in total\n", rows, total)
	fmt.Fprintln(out, "== The end: o-1 and o-3 charged once each; o-2 never announced.")
	return nil
}

// waitPayments prints n PaymentCaptured events as the ledger receives them.
func waitPayments(ctx context.Context, out io.Writer, captured <-chan PaymentCaptured, n int) error {
	for range n {
		select {
		case p := <-captured:
			fmt.Fprintf(out, "[ledger]   PaymentCaptured %s %d\n", p.OrderID, p.Amount)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d payments: %w", n, ctx.Err())
		}
	}
	return nil
}

// duplicates is how many messages billing's inbox skipped.
func duplicates(reg *prometheus.Registry) float64 {
	families, err := reg.Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, f := range families {
		if f.GetName() == "eventfx_inbox_duplicates_total" {
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func stopAll(apps []*fx.App) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(apps) - 1; i >= 0; i-- {
		_ = apps[i].Stop(ctx)
	}
}
