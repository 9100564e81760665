package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfx/eventfx/internal/metrics"
	"github.com/eventfx/eventfx/router"
)

// BenchmarkObserver is the cost of the message metrics per delivery: the
// whole middleware chain around a handler that succeeds at once, without
// the observer (off, as with observability.metrics.disabled) and with it.
func BenchmarkObserver(b *testing.B) {
	m, err := metrics.NewMessages(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name      string
		observers []router.Observer
	}{
		{"off", nil},
		{"on", []router.Observer{metrics.NewObserver(m, nil)}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := chain(func(*message.Message) ([]*message.Message, error) { return nil, nil }, &poisonTopic{}, c.observers...)
			msg := message.NewMessage("m1", []byte("{}"))
			msg.Metadata.Set("correlation_id", "c1")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				msg.SetContext(ctx)
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkObserverParallel is the metrics' cost per delivery when every
// core delivers messages of the same handler at once: where counters
// shared by the cores would bounce between their caches.
func BenchmarkObserverParallel(b *testing.B) {
	m, err := metrics.NewMessages(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	hooks := metrics.NewObserver(m, nil)(router.HandlerInfo{Name: "h", Topic: "t"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		msg := message.NewMessage("m1", nil)
		for pb.Next() {
			hooks.Received(msg)
			hooks.AttemptEnded(msg, 1, time.Millisecond, nil)
			hooks.Delivered(msg, router.Succeeded, 1)
		}
	})
}

// BenchmarkPublisher is the cost of the publish metrics per Publish call
// of one message, over a publisher that does nothing.
func BenchmarkPublisher(b *testing.B) {
	p, err := metrics.NewPublishes(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		pub  message.Publisher
	}{
		{"off", &broker{}},
		{"on", p.Wrap(&broker{})},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			msg := message.NewMessage("m1", []byte("{}"))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.pub.Publish("orders", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
