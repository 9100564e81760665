// Quickstart: service A publishes event_0 … event_9 to topic1; service B, in
// a consumer group starting at the oldest offset, prints each one with its
// correlation ID. Both are fx apps built from eventfx's modules, running in
// one process on the embedded Kafka broker: no setup needed.
//
//	go run ./examples/quickstart            # exits 0 once all ten arrived
//	go run ./examples/quickstart --keep-running
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
)

const (
	topic  = "topic1"
	events = 10
)

// Event is what service A publishes.
type Event struct {
	Name string `json:"name"`
}

// errNotStarted: a service did not start. fx.App.Start's error is logged by
// app.Core's logger, once, so main does not print it again.
var errNotStarted = errors.New("a service did not start")

func main() {
	keep := flag.Bool("keep-running", false, "keep consuming after the ten events, until Ctrl-C")
	timeout := flag.Duration("timeout", 60*time.Second, "give up if the ten events have not arrived by then")
	flag.Parse()
	if err := run(os.Stdout, *keep, *timeout); err != nil {
		if !errors.Is(err, errNotStarted) {
			fmt.Fprintln(os.Stderr, "quickstart:", err)
		}
		os.Exit(1)
	}
}

func run(out io.Writer, keep bool, timeout time.Duration) error {
	// Both services use the embedded broker (kafka.brokers: [embedded], the
	// default); EVENTFX_* variables still override, e.g. EVENTFX_KAFKA_BROKERS.
	cfg, err := config.Load("")
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	wg.Add(events)
	receive := func(ctx context.Context, e Event) error {
		fmt.Fprintf(out, "Received message: %s correlation_id=%s\n", e.Name, handlers.CorrelationID(ctx))
		wg.Done()
		return nil
	}

	// Service B: the subscriber.
	subCfg := cfg
	subCfg.Service = "service-b"
	subscriber := fx.New(
		app.Core(subCfg),
		app.KafkaModule,
		app.SubscriberModule,
		handlers.Register(handlers.New("printer", topic, receive)),
	)

	// Service A: the publisher.
	pubCfg := cfg
	pubCfg.Service = "service-a"
	var pub *app.Publisher
	publisher := fx.New(app.Core(pubCfg), app.KafkaModule, app.PublisherModule, fx.Populate(&pub))

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, a := range []*fx.App{publisher, subscriber} {
		if err := a.Start(ctx); err != nil {
			return errNotStarted // app.Core's logger said why, once
		}
	}
	defer stop(subscriber, publisher)

	for i := range events {
		m, err := pub.PublishEvent(ctx, topic, Event{Name: fmt.Sprintf("event_%d", i)})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Published message: event_%d id=%s correlation_id=%s\n", i, m.UUID, m.Metadata.Get("correlation_id"))
	}

	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
		fmt.Fprintln(out, "All", events, "messages received.")
	case <-ctx.Done():
		return fmt.Errorf("not all %d messages arrived within %s", events, timeout)
	}
	if keep {
		fmt.Fprintln(out, "Keep running; Ctrl-C to stop.")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	return nil
}

func stop(apps ...*fx.App) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range apps {
		_ = a.Stop(ctx) // app.Core's logger reports a failed stop

	}
}
