package benchmarks

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/bench"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/ids"
	"github.com/eventfx/eventfx/internal/intake"
	efxkafka "github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/transport"
)

// payloadSize is the size of every benchmark message's payload.
const payloadSize = 256

var payload = make([]byte, payloadSize)

// brokerAddr is the package's embedded broker (8 partitions), started once.
var brokerAddr string

func TestMain(m *testing.M) {
	b, err := broker.Start(broker.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start broker:", err)
		os.Exit(1)
	}
	brokerAddr = b.Addr()
	code := m.Run()
	b.Close()
	os.Exit(code)
}

// counter counts handled messages, and times them from the first on.
type counter struct {
	want  int64
	n     atomic.Int64
	first atomic.Int64 // unix nanos of the first message
	last  atomic.Int64
	// The process's CPU time (user and system) at the first and the last
	// message: CPU per message varies less from run to run on a shared
	// machine than the rate does, which also depends on how the
	// goroutines happen to be scheduled on the cores.
	cpuFirst, cpuLast atomic.Int64
	// waited adds up how long the I/O-bound handler's 1 ms waits really
	// took (BenchmarkKafkaConsumeIO).
	waited atomic.Int64
	done   chan struct{}
}

func newCounter(want int) *counter {
	return &counter{want: int64(want), done: make(chan struct{})}
}

func (c *counter) add(k int) {
	now := time.Now().UnixNano()
	if c.first.CompareAndSwap(0, now) {
		c.cpuFirst.Store(cpuTime())
	}
	if n := c.n.Add(int64(k)); n >= c.want {
		if c.last.CompareAndSwap(0, now) {
			c.cpuLast.Store(cpuTime())
			close(c.done)
		}
	}
}

// cpuTime is the CPU time the process has used, in nanoseconds.
func cpuTime() int64 { return bench.ProcessCPU().Nanoseconds() }

func (c *counter) handle(*message.Message) error { c.add(1); return nil }

func (c *counter) wait(b *testing.B, timeout time.Duration) {
	b.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		b.Fatalf("handled %d of %d messages in %s", c.n.Load(), c.want, timeout)
	}
}

// reportSteady reports the rate between the first and the last message,
// and the CPU time per message meanwhile (the whole process's: transport,
// router, chain, broker when embedded).
func (c *counter) reportSteady(b *testing.B) {
	elapsed := time.Duration(c.last.Load() - c.first.Load())
	if c.want > 1 && elapsed > 0 {
		b.ReportMetric(float64(c.want-1)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(c.cpuLast.Load()-c.cpuFirst.Load())/1e3/float64(c.want-1), "cpu-µs/msg")
	}
	if w := c.waited.Load(); w > 0 {
		b.ReportMetric(float64(w)/1e6/float64(c.n.Load()), "wait-ms/msg")
	}
}

// reportRate reports n messages over elapsed.
func reportRate(b *testing.B, n int, elapsed time.Duration) {
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
}

// benchConfig is a service config for the benchmarks: defaults, warnings
// only in the log (nothing is logged per message at info either).
func benchConfig(brokers ...string) config.Config {
	cfg := config.Config{Service: kafkatest.Unique("bench")}
	if len(brokers) > 0 {
		cfg.Kafka.Brokers = brokers
	}
	cfg.Observability.Log.Level = "warn"
	return cfg.WithDefaults()
}

// startApp starts an fx app and stops it at cleanup.
func startApp(b *testing.B, opts ...fx.Option) {
	b.Helper()
	a := fx.New(append(opts, fx.NopLogger)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		b.Fatalf("start: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			b.Errorf("stop: %v", err)
		}
	})
}

// BenchmarkRouterOverhead runs one trivial handler on b.N ready messages:
// the bare Watermill router against eventfx's whole chain, as a service
// gets it by default (correlation ID, metrics, tracing with exporter none,
// poison queue, retry, timeout, recoverer, emit). The transport of both is
// a subscriber whose channel holds the messages already, so the clock
// measures the router and its chain, not a broker (the Kafka benchmarks do)
// or gochannel's goroutine per message. Half the messages carry a
// correlation ID; eventfx generates one for the others.
//
// eventfx's router takes each handler's messages through one Watermill
// handler per processor (internal/intake); watermill-intake-per-core is the
// bare router doing the same, which tells what the chain itself costs.
func BenchmarkRouterOverhead(b *testing.B) {
	b.Run("watermill", func(b *testing.B) {
		runWatermill(b, readySubscriber(b.N), "bench", nil, nil)
	})
	// For scale: Watermill's stock middleware doing what eventfx's chain
	// does (correlation ID, poison queue, retry, timeout, recoverer).
	b.Run("watermill-stock-chain", func(b *testing.B) {
		poison, err := middleware.PoisonQueue(discard{}, "poison")
		if err != nil {
			b.Fatal(err)
		}
		runWatermill(b, readySubscriber(b.N), "bench", nil, nil,
			middleware.CorrelationID,
			poison,
			middleware.Retry{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 10 * time.Second, RandomizationFactor: 0.2}.Middleware,
			middleware.Timeout(30*time.Second),
			middleware.Recoverer,
		)
	})
	b.Run("watermill-intake-per-core", func(b *testing.B) {
		runWatermillIntakes(b, runtime.GOMAXPROCS(0), readySubscriber(b.N), "bench", nil, nil)
	})
	b.Run("eventfx", func(b *testing.B) {
		sub := readySubscriber(b.N)
		c := newCounter(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		startApp(b,
			app.Core(benchConfig()), fx.Supply(fx.Annotate(readyTransport{sub}, fx.As(new(transport.Transport)))), app.SubscriberModule,
			handlers.Register(handlers.Handler{Name: "bench", Topic: "bench", Func: func(m *message.Message) ([]*message.Message, error) {
				return nil, c.handle(m)
			}}),
		)
		c.wait(b, 5*time.Minute)
		b.StopTimer()
		c.reportSteady(b)
	})
}

// ready is a subscriber that makes its n messages as the router takes
// them, as a real transport does (Kafka's unmarshals each record just
// before handing it over): a message is in cache when the router gets it.
// Made all before the clock started, 200,000 messages were far beyond the
// cache, and any middleware reading a message's metadata was charged a
// cache miss no real transport has. The generator runs on its own
// goroutine, a small buffer ahead; the channel is closed when the
// subscription ends.
type ready struct{ n int }

func readySubscriber(n int) ready { return ready{n: n} }

func (r ready) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	ch := make(chan *message.Message, 256)
	go func() {
		defer close(ch)
		for i := range r.n {
			m := message.NewMessage(strconv.Itoa(i), payload)
			if i%2 == 0 {
				m.Metadata.Set(meta.CorrelationID, "c-"+strconv.Itoa(i))
			}
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
		}
		<-ctx.Done()
	}()
	return ch, nil
}

func (ready) Close() error { return nil }

// readyTransport is the eventfx transport of the router benchmark: its
// subscriber is ready's, its publisher (poison queue, emitted events)
// discards.
type readyTransport struct{ sub ready }

var _ transport.Transport = readyTransport{}

// Subscriber is ready as the router's subscriber. Like the Kafka
// subscribers, it costs nothing per message to drain: the benchmark ends
// once every message was handled, so Drain has nothing to wait for.
func (t readyTransport) Subscriber(transport.Spec) (transport.Subscriber, error) {
	return drained{t.sub}, nil
}

// drained is a subscriber with nothing left in flight when it drains.
type drained struct{ ready }

func (drained) Drain(context.Context) error           { return nil }
func (drained) Joined() error                         { return nil }
func (readyTransport) Publisher() transport.Publisher { return discard{} }
func (readyTransport) Brokers() []string              { return nil }
func (readyTransport) Start(context.Context) error    { return nil }
func (readyTransport) Close() error                   { return nil }
func (readyTransport) Ping(context.Context) error     { return nil }
func (readyTransport) System() string                 { return "" }

type discard struct{}

func (discard) Publish(string, ...*message.Message) error { return nil }
func (discard) PublishContext(context.Context, string, ...*message.Message) error {
	return nil
}
func (discard) Close() error { return nil }

// produce writes n records to a fresh topic with franz-go, in the eventfx
// wire format (ID and correlation ID headers), keyed by one of keys
// distinct keys in turn (none when keys is 0).
func produce(b *testing.B, n, keys int) string {
	b.Helper()
	return produceValue(b, n, keys, payload)
}

// produceValue is produce with value as every record's value.
func produceValue(b *testing.B, n, keys int, value []byte) string {
	b.Helper()
	topic := kafkatest.Unique("bench")
	cl := kafkatest.Client(b, brokerAddr, kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond),
		efxkafka.Partitioner(benchConfig().Kafka))
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for i := range n {
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Value: value, Headers: []kgo.RecordHeader{
			{Key: kafka.UUIDHeaderKey, Value: []byte(ids.New())},
			{Key: meta.CorrelationID, Value: []byte(strconv.Itoa(i))},
		}}
		if keys > 0 {
			r.Key = []byte("key-" + strconv.Itoa(i%keys))
		}
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(&err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("produce: %v", *err)
	}
	return topic
}

// consumeWatermill consumes topic's b.N records with the bare Watermill
// router on watermill-kafka (its default Sarama settings, from the oldest
// offset) and handle, and reports the steady rate.
func consumeWatermill(b *testing.B, topic string, c *counter, handle func(*message.Message) error) {
	consumeWatermillIntakes(b, 1, topic, c, handle)
}

// consumeWatermillIntakes is consumeWatermill through runWatermillIntakes.
func consumeWatermillIntakes(b *testing.B, intakes int, topic string, c *counter, handle func(*message.Message) error) {
	sc := kafka.DefaultSaramaSubscriberConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers: []string{brokerAddr}, Unmarshaler: kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: sc, ConsumerGroup: kafkatest.Unique("group"),
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	runWatermillIntakes(b, intakes, sub, topic, c, handle)
}

// runWatermill runs a bare Watermill router with middleware mws and one
// handler of topic on sub until c counted b.N messages (a new counter
// when c is nil; its handle when handle is nil), and reports the steady
// rate.
func runWatermill(b *testing.B, sub message.Subscriber, topic string, c *counter, handle func(*message.Message) error, mws ...message.HandlerMiddleware) {
	runWatermillIntakes(b, 1, sub, topic, c, handle, mws...)
}

// runWatermillIntakes is runWatermill with intakes Watermill handlers
// receiving from sub's one subscription, as eventfx's router runs one per
// processor: the bare router with eventfx's intake, to tell the cost of
// eventfx's chain from the gain of its intake.
func runWatermillIntakes(b *testing.B, intakes int, sub message.Subscriber, topic string, c *counter, handle func(*message.Message) error, mws ...message.HandlerMiddleware) {
	if c == nil {
		c = newCounter(b.N)
	}
	if handle == nil {
		handle = c.handle
	}
	r, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	r.AddMiddleware(mws...)
	subs := []message.Subscriber{sub}
	if intakes > 1 {
		subs = intake.Share(sub, intakes)
	}
	for i, in := range subs {
		r.AddConsumerHandler("bench"+strconv.Itoa(i), topic, in, handle)
	}
	b.ReportAllocs()
	b.ResetTimer()
	go func() { _ = r.Run(context.Background()) }()
	b.Cleanup(func() { _ = r.Close() })
	c.wait(b, 5*time.Minute)
	b.StopTimer()
	c.reportSteady(b)
}

// consumeEventfx consumes topic's b.N records with an eventfx subscriber
// service (whole chain) consuming in mode, and reports the steady rate.
func consumeEventfx(b *testing.B, topic, mode string, c *counter, handle func(*message.Message) error) {
	cfg := benchConfig(brokerAddr)
	cfg.Kafka.Consume = mode
	b.ReportAllocs()
	b.ResetTimer()
	startApp(b,
		app.Core(cfg), app.KafkaModule, app.SubscriberModule,
		handlers.Register(handlers.Handler{Name: "bench", Topic: topic, Func: func(m *message.Message) ([]*message.Message, error) {
			return nil, handle(m)
		}}),
	)
	c.wait(b, 5*time.Minute)
	b.StopTimer()
	c.reportSteady(b)
}

// consumeFranz consumes topic's b.N records with franz-go's raw group
// consumer; the clock starts at the assignment (one fetch can bring
// thousands of records).
func consumeFranz(b *testing.B, topic string, c *counter) {
	cl := kafkatest.Client(b, brokerAddr, kgo.ConsumerGroup(kafkatest.Unique("group")),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			if c.first.CompareAndSwap(0, time.Now().UnixNano()) {
				c.cpuFirst.Store(cpuTime())
			}
		}))
	b.ReportAllocs()
	b.ResetTimer()
	for c.n.Load() < c.want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		fs := cl.PollFetches(ctx)
		cancel()
		if err := fs.Err0(); err != nil {
			b.Fatal(err)
		}
		if n := fs.NumRecords(); n > 0 {
			c.add(n)
		}
	}
	b.StopTimer()
	c.reportSteady(b)
}

// BenchmarkKafkaConsume consumes b.N records, produced beforehand on the
// embedded broker's 8 partitions with 1,000 keys, in a fresh consumer
// group, with a trivial handler: the bare Watermill router on
// watermill-kafka, the eventfx subscriber service (whole chain) by
// partition and by key, and franz-go's raw group consumer. The rate is
// steady state: from the first message handled to the last.
// watermill-kafka-intake-per-core is the bare router with eventfx's intake
// (see BenchmarkRouterOverhead).
func BenchmarkKafkaConsume(b *testing.B) {
	b.Run("watermill-kafka", func(b *testing.B) {
		c := newCounter(b.N)
		consumeWatermill(b, produce(b, b.N, benchKeys), c, c.handle)
	})
	b.Run("watermill-kafka-intake-per-core", func(b *testing.B) {
		c := newCounter(b.N)
		consumeWatermillIntakes(b, runtime.GOMAXPROCS(0), produce(b, b.N, benchKeys), c, c.handle)
	})
	b.Run("eventfx", func(b *testing.B) {
		c := newCounter(b.N)
		consumeEventfx(b, produce(b, b.N, benchKeys), config.ConsumePartition, c, c.handle)
	})
	b.Run("eventfx-key", func(b *testing.B) {
		c := newCounter(b.N)
		consumeEventfx(b, produce(b, b.N, benchKeys), config.ConsumeKey, c, c.handle)
	})
	b.Run("eventfx-key-json", func(b *testing.B) {
		consumeEventfxJSON(b, config.ConsumeKey, newCounter(b.N))
	})
	b.Run("eventfx-key-avro", func(b *testing.B) {
		consumeEventfxAvro(b, config.ConsumeKey, newCounter(b.N))
	})
	b.Run("franz-go", func(b *testing.B) {
		c := newCounter(b.N)
		consumeFranz(b, produce(b, b.N, benchKeys), c)
	})
}

// BenchmarkKafkaConsumeIO is BenchmarkKafkaConsume with an I/O-bound
// handler, one that waits 1 ms (a webhook, a database write): by
// partition, a service handles at most partitions/latency messages a
// second; by key, up to kafka.max_in_flight at once.
//
// wait-ms/msg is how long the 1 ms wait really took, on average. Go's
// timers are late by up to a millisecond whenever every processor is
// idle (on Linux the runtime waits for its next timer in epoll_wait,
// whose timeout is whole milliseconds: golang/go#53824), so the figure
// depends on how busy the process is, and so does the rate.
func BenchmarkKafkaConsumeIO(b *testing.B) {
	io := func(c *counter) func(*message.Message) error {
		return func(m *message.Message) error {
			start := time.Now()
			time.Sleep(time.Millisecond)
			c.waited.Add(int64(time.Since(start)))
			return c.handle(m)
		}
	}
	b.Run("watermill-kafka", func(b *testing.B) {
		c := newCounter(b.N)
		consumeWatermill(b, produce(b, b.N, benchKeys), c, io(c))
	})
	b.Run("eventfx", func(b *testing.B) {
		c := newCounter(b.N)
		consumeEventfx(b, produce(b, b.N, benchKeys), config.ConsumePartition, c, io(c))
	})
	b.Run("eventfx-key", func(b *testing.B) {
		c := newCounter(b.N)
		consumeEventfx(b, produce(b, b.N, benchKeys), config.ConsumeKey, c, io(c))
		// Key mode's own limit: max_in_flight messages, each taking the
		// measured wait, at once — what no consumer of this handler can
		// beat, whatever Go's timers do.
		if w := c.waited.Load(); w > 0 {
			wait := time.Duration(w / c.n.Load())
			b.ReportMetric(float64(benchConfig().Kafka.MaxInFlight)/wait.Seconds(), "limit-msgs/s")
		}
	})
}

// benchKeys is the number of distinct keys of the consumed records.
const benchKeys = 1000

// BenchmarkKafkaPublish publishes b.N messages from one goroutine to the
// embedded broker, acks from all in-sync replicas: watermill-kafka's
// Publish one message at a time (how a handler's output and a loop of
// Publish calls go through it), eventfx's Publisher with batches of
// publishBatch messages (PublishMessages), and franz-go producing
// asynchronously, then flushing. The clock starts once the client is
// connected and the topic exists.
func BenchmarkKafkaPublish(b *testing.B) {
	b.Run("watermill-kafka-sequential", func(b *testing.B) {
		pub, err := kafka.NewPublisher(kafka.PublisherConfig{
			Brokers: []string{brokerAddr}, Marshaler: kafka.DefaultMarshaler{},
		}, watermill.NopLogger{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pub.Close() })
		topic := kafkatest.Unique("bench")
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), payload)); err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		reportRate(b, b.N, elapsed)
	})
	b.Run("eventfx-batch", func(b *testing.B) {
		var pub *app.Publisher
		startApp(b, app.Core(benchConfig(brokerAddr)), app.KafkaModule, app.PublisherModule, fx.Populate(&pub))
		ctx := context.Background()
		topic := kafkatest.Unique("bench")
		if _, err := pub.Publish(ctx, topic, payload); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		batch := make([]*message.Message, 0, publishBatch)
		for i := range b.N {
			batch = append(batch, message.NewMessage(watermill.NewUUID(), payload))
			if len(batch) == publishBatch || i == b.N-1 {
				if err := pub.PublishMessages(ctx, topic, batch...); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		reportRate(b, b.N, elapsed)
	})
	b.Run("franz-go", func(b *testing.B) {
		cl := kafkatest.Client(b, brokerAddr, kgo.AllowAutoTopicCreation())
		topic := kafkatest.Unique("bench")
		ctx := context.Background()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: payload}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var failed atomic.Pointer[error]
		for range b.N {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: payload, Headers: []kgo.RecordHeader{
				{Key: kafka.UUIDHeaderKey, Value: []byte(watermill.NewUUID())},
			}}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Store(&err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		reportRate(b, b.N, elapsed)
	})
}

// publishBatch is how many messages eventfx-batch passes to one
// PublishMessages call.
const publishBatch = 1000
