package benchmarks

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
)

// pool models the work behind a batch handler: a resource of a few
// connections where one call costs a fixed time plus a little per item,
// as a multi-row INSERT does.
type pool struct {
	conns         chan struct{}
	perCall, item time.Duration
}

func newPool() *pool {
	return &pool{conns: make(chan struct{}, 4), perCall: time.Millisecond, item: 5 * time.Microsecond}
}

// call takes a connection and holds it for one call of n items.
func (p *pool) call(ctx context.Context, n int) error {
	select {
	case p.conns <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	time.Sleep(p.perCall + time.Duration(n)*p.item)
	<-p.conns
	return nil
}

// raw is a codec that hands the payload over as it is.
type raw struct{}

func (raw) Marshal(v any) ([]byte, error)   { return v.([]byte), nil }
func (raw) Unmarshal(b []byte, v any) error { *(v.(*[]byte)) = b; return nil }
func (raw) ContentType() string             { return "application/octet-stream" }

// BenchmarkBatchHandler consumes b.N records by key (max_in_flight 256)
// with a handler whose work is one call of pool per message, or one call
// per batch (handlers.NewBatch, BatchSize 64: four batches of the 256 in flight fill at once, one per connection): the same resource of 4
// connections, 1 ms per call plus 5 µs per item.
func BenchmarkBatchHandler(b *testing.B) {
	run := func(b *testing.B, h handlers.Handler, c *counter) {
		cfg := benchConfig(brokerAddr)
		cfg.Kafka.Consume, cfg.Kafka.MaxInFlight = config.ConsumeKey, 1024
		b.ReportAllocs()
		b.ResetTimer()
		startApp(b, app.Core(cfg), app.KafkaModule, app.SubscriberModule, handlers.Register(h))
		c.wait(b, 10*time.Minute)
		b.StopTimer()
		c.reportSteady(b)
	}
	b.Run("per-message", func(b *testing.B) {
		c, p := newCounter(b.N), newPool()
		topic := produce(b, b.N, benchKeys)
		run(b, handlers.New("bench", topic, func(ctx context.Context, _ []byte) error {
			if err := p.call(ctx, 1); err != nil {
				return err
			}
			c.add(1)
			return nil
		}, handlers.WithCodec(raw{})), c)
	})
	b.Run("batch", func(b *testing.B) {
		c, p := newCounter(b.N), newPool()
		var calls atomic.Int64
		topic := produce(b, b.N, benchKeys)
		run(b, handlers.NewBatch("bench", topic, func(ctx context.Context, events [][]byte) error {
			if err := p.call(ctx, len(events)); err != nil {
				return err
			}
			calls.Add(1)
			c.add(len(events))
			return nil
		}, handlers.WithCodec(raw{}), handlers.BatchSize(64)), c)
		b.ReportMetric(float64(b.N)/float64(calls.Load()), "events/call")
	})
}
