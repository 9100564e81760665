// Orders: three services, one correlation ID. The orders service publishes
// OrderPlaced; billing handles it and emits PaymentCaptured; shipping
// handles that. One payment gateway call is flaky and succeeds after
// retries; one order has a negative amount and is poisoned with its reason;
// one order goes to a region shipping does not serve yet, is poisoned, and
// is replayed from the poison queue once shipping is "fixed". A fourth
// service, ops, watches the poison queue (its handler poison-desk consumes
// the poison topic) and does the replay with its publisher. Everything runs
// in one process on the embedded Kafka broker, with eventfx's public API
// only.
//
//	go run ./examples/orders
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
)

// errNotStarted: a service did not start. fx.App.Start's error is logged by
// app.Core's logger, once, so main does not print it again.
var errNotStarted = errors.New("a service did not start")

func main() {
	timeout := flag.Duration("timeout", 90*time.Second, "give up if the story has not ended by then")
	flag.Parse()
	if err := run(os.Stdout, *timeout); err != nil {
		if !errors.Is(err, errNotStarted) {
			fmt.Fprintln(os.Stderr, "orders:", err)
		}
		os.Exit(1)
	}
}

// story is the shared state the services report to, so the example knows
// when each chapter ended.
type story struct {
	out     io.Writer
	mu      sync.Mutex
	shipped map[string]string // order → correlation ID
	changed chan struct{}
	fixed   atomic.Bool // shipping serves every region
}

func (s *story) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format+"\n", args...)
}

func (s *story) ship(order, correlationID string) {
	s.mu.Lock()
	s.shipped[order] = correlationID
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// waitShipped waits until every order in ids shipped.
func (s *story) waitShipped(ctx context.Context, ids ...string) error {
	for {
		s.mu.Lock()
		missing := 0
		for _, id := range ids {
			if _, ok := s.shipped[id]; !ok {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-s.changed:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("orders %v not all shipped: %w", ids, ctx.Err())
		}
	}
}

// checkCorrelation checks that each order shipped with the correlation ID it
// was placed with.
func (s *story) checkCorrelation(placed map[string]string, ids ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if got := s.shipped[id]; got != placed[id] {
			return fmt.Errorf("%s: correlation ID changed on the way: placed with %s, shipped with %s", id, placed[id], got)
		}
	}
	return nil
}

// billing charges an order and emits PaymentCaptured. The payment gateway
// times out twice for o-2: the retry middleware tries again with backoff.
func (s *story) billing(ctx context.Context, o OrderPlaced) ([]PaymentCaptured, error) {
	attempt := handlers.Attempt(ctx)
	if o.ID == "o-2" && attempt < 3 {
		s.printf("[billing]  %s attempt %d: payment gateway timeout (will retry) correlation_id=%s", o.ID, attempt, handlers.CorrelationID(ctx))
		return nil, errors.New("payment gateway timeout")
	}
	s.printf("[billing]  %s attempt %d: captured %d.%02d for %s correlation_id=%s", o.ID, attempt, o.Amount/100, o.Amount%100, o.Customer, handlers.CorrelationID(ctx))
	return []PaymentCaptured{{OrderID: o.ID, Amount: o.Amount, Region: o.Region}}, nil
}

// shipping ships a paid order. It does not serve the moon until fixed: that
// is not worth retrying, so the error is permanent and the payment goes to
// the poison queue at once.
func (s *story) shipping(ctx context.Context, p PaymentCaptured) error {
	if p.Region == "moon" && !s.fixed.Load() {
		s.printf("[shipping] %s: no carrier for region %q correlation_id=%s", p.OrderID, p.Region, handlers.CorrelationID(ctx))
		return handlers.Permanent(fmt.Errorf("no carrier for region %q", p.Region))
	}
	replay := ""
	if n := handlers.Header(ctx, headerReplayed); n != "" {
		replay = fmt.Sprintf(" (replay %s of message %s)", n, handlers.MessageID(ctx))
	}
	s.printf("[shipping] %s shipped to %s correlation_id=%s%s", p.OrderID, p.Region, handlers.CorrelationID(ctx), replay)
	s.ship(p.OrderID, handlers.CorrelationID(ctx))
	return nil
}

func run(out io.Writer, timeout time.Duration) error {
	cfg, err := config.Load("")
	if err != nil {
		return err
	}
	// Short delays so the story reads quickly; production keeps the defaults.
	cfg.Retry = config.Retry{MaxRetries: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond}
	service := func(name string) config.Config { c := cfg; c.Service = name; return c }

	s := &story{out: out, shipped: map[string]string{}, changed: make(chan struct{}, 1)}
	ops := newDesk(cfg.Poison.Topic)
	var pub, opsPub *app.Publisher
	apps := []*fx.App{
		fx.New(app.Core(service("orders")), app.KafkaModule, app.PublisherModule, fx.Populate(&pub)),
		fx.New(app.Core(service("billing")), app.KafkaModule, app.SubscriberModule,
			handlers.Register(handlers.NewEmitting("billing", ordersTopic, paymentsTopic, s.billing))),
		fx.New(app.Core(service("shipping")), app.KafkaModule, app.SubscriberModule,
			handlers.Register(handlers.New("shipping", paymentsTopic, s.shipping))),
		fx.New(app.Core(service("ops")), app.KafkaModule, app.SubscriberModule, app.PublisherModule,
			handlers.Register(ops.handler()), fx.Populate(&opsPub)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, a := range apps {
		if err := a.Start(ctx); err != nil {
			return errNotStarted // app.Core's logger said why, once
		}
	}
	defer stopAll(apps)

	s.printf("== 1. The orders service places four orders")
	orders := []OrderPlaced{
		{ID: "o-1", Customer: "ada", Amount: 4200, Region: "eu"},
		{ID: "o-2", Customer: "grace", Amount: 1999, Region: "us"},
		{ID: "o-3", Customer: "linus", Amount: -500, Region: "eu"},
		{ID: "o-4", Customer: "margaret", Amount: 9900, Region: "moon"},
	}
	correlation := map[string]string{}
	for _, o := range orders {
		m, err := pub.PublishEvent(ctx, ordersTopic, o, app.WithKey(o.ID))
		if err != nil {
			return err
		}
		correlation[o.ID] = m.Metadata.Get("correlation_id")
		s.printf("[orders]   placed %s amount=%d region=%s correlation_id=%s", o.ID, o.Amount, o.Region, correlation[o.ID])
	}

	s.printf("== 2. Billing and shipping handle them (o-2 needs retries)")
	if err := s.waitShipped(ctx, "o-1", "o-2"); err != nil {
		return err
	}
	if err := s.checkCorrelation(correlation, "o-1", "o-2"); err != nil {
		return err
	}

	s.printf("== 3. The poison queue, as the ops service's poison-desk received it (eventfx poison list)")
	poisoned, err := ops.wait(ctx, 2)
	if err != nil {
		return err
	}
	for _, p := range poisoned {
		s.printf("[poison]   %s", p)
	}

	s.printf("== 4. Shipping learns to reach the moon; ops replays its poisoned messages (eventfx poison replay --handler shipping)")
	s.fixed.Store(true)
	summary, err := ops.replay(ctx, opsPub, "shipping")
	if err != nil {
		return err
	}
	s.printf("[replay]   %s", summary)
	if err := s.waitShipped(ctx, "o-4"); err != nil {
		return err
	}
	if err := s.checkCorrelation(correlation, "o-4"); err != nil {
		return err
	}
	s.printf("== The end: o-1, o-2 and o-4 shipped, each with its order's correlation ID; o-3 stays in the poison queue with its reason.")
	return nil
}

func stopAll(apps []*fx.App) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(apps) - 1; i >= 0; i-- {
		_ = apps[i].Stop(ctx) // app.Core's logger reports a failed stop
	}
}
