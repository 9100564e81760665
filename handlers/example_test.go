package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
)

type OrderPlaced struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// Validate is called after decoding; an error is permanent: the message is
// poisoned at once, with the error as its reason.
func (o OrderPlaced) Validate() error {
	if o.Amount <= 0 {
		return fmt.Errorf("amount must be positive, got %d", o.Amount)
	}
	return nil
}

type PaymentCaptured struct {
	OrderID string `json:"order_id"`
}

// EventKey makes the order's ID the emitted event's partition key.
func (p PaymentCaptured) EventKey() string { return p.OrderID }

// run starts a service of the given handlers on the embedded broker,
// publishes events to topic, and stops it once done is closed.
func run(done <-chan struct{}, topic string, events []OrderPlaced, hs ...handlers.Handler) {
	cfg, _ := config.LoadYAML([]byte("service: example\nobservability: {log: {level: error}}\n"), nil)
	var pub *app.Publisher
	a := fx.New(app.Core(cfg), app.KafkaModule, app.PublisherModule, app.SubscriberModule,
		handlers.Register(hs...), fx.Populate(&pub))
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		return
	}
	defer a.Stop(ctx)
	for _, e := range events {
		if _, err := pub.PublishEvent(ctx, topic, e, app.WithKey(e.ID)); err != nil {
			fmt.Println(err)
			return
		}
	}
	<-done
}

// A typed handler: the message is decoded into the event's type and
// validated before the function runs. A nil error acknowledges the
// message; an error is retried with backoff, then poisoned;
// handlers.Permanent skips the retries.
func ExampleNew() {
	done := make(chan struct{})
	bill := func(ctx context.Context, o OrderPlaced) error {
		if o.Amount > 1_000_000 {
			return handlers.Permanent(errors.New("needs a manual review"))
		}
		fmt.Printf("billed %s (attempt %d)\n", o.ID, handlers.Attempt(ctx))
		close(done)
		return nil
	}
	run(done, "orders", []OrderPlaced{{ID: "o-1", Amount: 4200}},
		handlers.New("billing", "orders", bill))
	// Output: billed o-1 (attempt 1)
}

// An emitting handler returns the events it emits: they are published to
// its publish topic within the attempt, with the incoming correlation ID,
// before the incoming message is acknowledged.
func ExampleNewEmitting() {
	done := make(chan struct{})
	bill := func(ctx context.Context, o OrderPlaced) ([]PaymentCaptured, error) {
		return []PaymentCaptured{{OrderID: o.ID}}, nil
	}
	ship := func(ctx context.Context, p PaymentCaptured) error {
		fmt.Printf("shipping %s, key %s\n", p.OrderID, handlers.Key(ctx))
		close(done)
		return nil
	}
	run(done, "orders", []OrderPlaced{{ID: "o-2", Amount: 1999}},
		handlers.NewEmitting("billing", "orders", "payments", bill),
		handlers.New("shipping", "payments", ship))
	// Output: shipping o-2, key o-2
}

// Register adds handlers to the service; a handler with dependencies is
// provided by its constructor through AsHandler instead.
func ExampleRegister() {
	done := make(chan struct{})
	type ledger struct{ name string }
	newAudit := func(l *ledger) handlers.Handler {
		return handlers.New("audit", "orders", func(ctx context.Context, o OrderPlaced) error {
			fmt.Printf("%s: %s\n", l.name, o.ID)
			close(done)
			return nil
		})
	}
	cfg, _ := config.LoadYAML([]byte("service: example\nobservability: {log: {level: error}}\n"), nil)
	var pub *app.Publisher
	a := fx.New(app.Core(cfg), app.KafkaModule, app.PublisherModule, app.SubscriberModule,
		fx.Supply(&ledger{name: "ledger"}),
		fx.Provide(handlers.AsHandler(newAudit)),
		fx.Populate(&pub))
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		return
	}
	defer a.Stop(ctx)
	if _, err := pub.PublishEvent(ctx, "orders", OrderPlaced{ID: "o-3", Amount: 5}); err != nil {
		fmt.Println(err)
		return
	}
	<-done
	// Output: ledger: o-3
}

// A batch handler gets the events in flight at once — here the four
// orders, one per key — and settles each message from its result: a
// handlers.BatchError names the events that failed (retried, or poisoned
// at once when permanent); the others are acknowledged.
func ExampleNewBatch() {
	done := make(chan struct{})
	var mu sync.Mutex // batches may run at once
	var total int
	store := func(ctx context.Context, orders []OrderPlaced) error {
		mu.Lock()
		defer mu.Unlock()
		failed := handlers.BatchError{}
		for i, o := range orders {
			if o.Amount > 1_000_000 {
				failed[i] = handlers.Permanent(errors.New("needs a manual review"))
				continue
			}
			total += o.Amount
		}
		if total == 4200+1999+5 {
			fmt.Println("stored 3 orders, total", total)
			close(done)
		}
		if len(failed) > 0 {
			return failed
		}
		return nil
	}
	run(done, "orders", []OrderPlaced{{ID: "o-1", Amount: 4200}, {ID: "o-2", Amount: 1999}, {ID: "o-3", Amount: 5_000_000}, {ID: "o-4", Amount: 5}},
		handlers.NewBatch("store", "orders", store, handlers.ConsumeByKey(64), handlers.BatchWait(50*time.Millisecond)))
	// Output: stored 3 orders, total 6204
}
