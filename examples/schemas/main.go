// Schemas: Avro events through a Schema Registry, with nothing installed.
// The orders service publishes OrderPlaced events in Avro (its schema,
// version 1, registered under the subject orders-value); billing reads them
// with a newer schema that adds a currency with a default (Avro schema
// resolution fills it in) and emits PaymentCaptured, also Avro, to
// payments; shipping reads those. An old producer that still writes plain
// JSON to orders is poisoned at once, with a reason saying why. Everything
// runs in one process on the embedded Kafka broker and its in-process
// schema registry (kafka.brokers [embedded] and an empty
// schema_registry.url, the defaults).
//
//	go run ./examples/schemas
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/schema"
)

var (
	//go:embed order_placed.avsc
	orderPlacedV1 string
	//go:embed order_placed_v2.avsc
	orderPlacedV2 string
	//go:embed payment_captured.avsc
	paymentCaptured string
)

// OrderPlaced is what the orders service writes (schema version 1).
type OrderPlaced struct {
	ID          string `avro:"id"`
	Customer    string `avro:"customer"`
	AmountCents int64  `avro:"amount_cents"`
}

// EventKey keeps one customer's orders in order.
func (o OrderPlaced) EventKey() string { return o.Customer }

// BilledOrder is OrderPlaced as billing reads it (version 2).
type BilledOrder struct {
	ID          string `avro:"id"`
	Customer    string `avro:"customer"`
	AmountCents int64  `avro:"amount_cents"`
	Currency    string `avro:"currency"`
}

// PaymentCaptured is what billing emits.
type PaymentCaptured struct {
	OrderID     string `avro:"order_id"`
	AmountCents int64  `avro:"amount_cents"`
	Currency    string `avro:"currency"`
}

const (
	ordersTopic   = "orders"
	paymentsTopic = "payments"
)

var orders = []OrderPlaced{
	{ID: "o-1", Customer: "ada", AmountCents: 4200},
	{ID: "o-2", Customer: "grace", AmountCents: 1999},
	{ID: "o-3", Customer: "ada", AmountCents: 500},
}

// errNotStarted: a service did not start. fx.App.Start's error is logged by
// app.Core's logger, once, so main does not print it again.
var errNotStarted = errors.New("a service did not start")

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "give up if the story has not ended by then")
	flag.Parse()
	if err := run(os.Stdout, *timeout); err != nil {
		if !errors.Is(err, errNotStarted) {
			fmt.Fprintln(os.Stderr, "schemas:", err)
		}
		os.Exit(1)
	}
}

// story collects what the services report.
type story struct {
	out      io.Writer
	mu       sync.Mutex
	shipped  map[string]PaymentCaptured
	poisoned []string
	changed  chan struct{}
}

func (s *story) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format+"\n", args...)
}

func (s *story) note(f func()) {
	s.mu.Lock()
	f()
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until done says the story got there.
func (s *story) waitFor(ctx context.Context, what string, done func() bool) error {
	for {
		s.mu.Lock()
		ok := done()
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

func run(out io.Writer, timeout time.Duration) error {
	cfg, err := config.Load("") // the embedded broker and registry by default
	if err != nil {
		return err
	}
	s := &story{out: out, shipped: map[string]PaymentCaptured{}, changed: make(chan struct{}, 1)}

	// Billing reads OrderPlaced with version 2 and writes PaymentCaptured;
	// one codec holds both types.
	bill := func(ctx context.Context, o BilledOrder) ([]PaymentCaptured, error) {
		s.printf("[billing]  %s for %s: %d cents, currency %s (version 2's default: the order was written with version 1)",
			o.ID, o.Customer, o.AmountCents, o.Currency)
		return []PaymentCaptured{{OrderID: o.ID, AmountCents: o.AmountCents, Currency: o.Currency}}, nil
	}
	ship := func(_ context.Context, p PaymentCaptured) error {
		s.printf("[shipping] %s paid (%d %s)", p.OrderID, p.AmountCents, p.Currency)
		s.note(func() { s.shipped[p.OrderID] = p })
		return nil
	}
	// The poison watch reads the poison queue as `eventfx poison list` does.
	watch := handlers.Handler{Name: "poison-watch", Topic: cfg.WithDefaults().Poison.Topic,
		Func: func(msg *message.Message) ([]*message.Message, error) {
			reason := msg.Metadata.Get("reason_poisoned")
			s.printf("[poison]   %s from %s: %s", msg.Metadata.Get("handler_poisoned"), msg.Metadata.Get("topic_poisoned"), reason)
			s.note(func() { s.poisoned = append(s.poisoned, reason) })
			return nil, nil
		}}

	backend := cfg
	backend.Service = "backend"
	services := fx.New(
		app.Core(backend),
		app.KafkaModule,
		app.SchemaModule, // *schema.Registry: the in-process registry here
		app.SubscriberModule,
		fx.Provide(
			handlers.AsHandler(func(reg *schema.Registry) (handlers.Handler, error) {
				codec, err := schema.NewCodec(reg, schema.Avro[BilledOrder](orderPlacedV2), schema.Avro[PaymentCaptured](paymentCaptured))
				return handlers.NewEmitting("billing", ordersTopic, paymentsTopic, bill, handlers.WithCodec(codec)), err
			}),
			handlers.AsHandler(func(reg *schema.Registry) (handlers.Handler, error) {
				codec, err := schema.NewCodec(reg, schema.Avro[PaymentCaptured](paymentCaptured))
				return handlers.New("shipping", paymentsTopic, ship, handlers.WithCodec(codec)), err
			}),
		),
		handlers.Register(watch),
	)

	front := cfg
	front.Service = "orders"
	var (
		pub *app.Publisher
		reg *schema.Registry
	)
	ordersService := fx.New(app.Core(front), app.KafkaModule, app.SchemaModule, app.PublisherModule, fx.Populate(&pub, &reg))

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, a := range []*fx.App{services, ordersService} {
		if err := a.Start(ctx); err != nil {
			return errNotStarted // app.Core's logger said why, once
		}
	}
	defer stop(ordersService, services)

	s.printf("== 1. The orders service publishes OrderPlaced in Avro (schema version 1)")
	codec, err := schema.NewCodec(reg, schema.Avro[OrderPlaced](orderPlacedV1))
	if err != nil {
		return err
	}
	avroPub := pub.WithCodec(codec)
	for _, o := range orders {
		m, err := avroPub.PublishEvent(ctx, ordersTopic, o)
		if err != nil {
			return err
		}
		id, _, err := schema.ParseFrame(m.Payload)
		if err != nil {
			return err
		}
		s.printf("[orders]   %s: %d bytes, schema ID %d, content_type %s", o.ID, len(m.Payload), id, m.Metadata.Get("content_type"))
	}
	if err := s.waitFor(ctx, "payments shipped", func() bool { return len(s.shipped) == len(orders) }); err != nil {
		return err
	}

	s.printf("== 2. An old producer still writes plain JSON to orders: billing poisons it at once")
	if _, err := pub.Publish(ctx, ordersTopic, []byte(`{"id":"o-4","customer":"linus","amount_cents":100}`)); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "the JSON order poisoned", func() bool { return len(s.poisoned) == 1 }); err != nil {
		return err
	}

	s.printf("== 3. The registry's subjects")
	subjects, err := reg.Client().Subjects(ctx)
	if err != nil {
		return err
	}
	for _, subject := range subjects {
		versions, err := reg.Client().SubjectVersions(ctx, subject)
		if err != nil {
			return err
		}
		s.printf("[registry] %s: versions %v", subject, versions)
	}
	s.printf("== The end: %d orders billed and shipped through Avro; the JSON one is in the poison queue with its reason.", len(orders))
	return nil
}

// stop stops the services, last started first.
func stop(apps ...*fx.App) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range apps {
		_ = a.Stop(ctx)
	}
}
