package benchmarks

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	efxkafka "github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/loadgen"
)

// The headers of BenchmarkLatencyAtRate's messages.
const (
	// latSeqHeader numbers the paced messages 0..n-1; the probe that
	// waits for the consumer group is -1.
	latSeqHeader = "bench_seq"
	// latSentHeader is the send time, Unix nanoseconds, stamped just
	// before the message is handed to the client (Produce, Publish).
	latSentHeader = "bench_sent"
)

const (
	// latencyWarmup is how long a run offers its rate before it measures:
	// the consumers' fetch sessions, the connections and the garbage
	// collector's pacing settle at the rate first.
	latencyWarmup = 500 * time.Millisecond
	// latencyMeasure is how long a run measures, at its rate.
	latencyMeasure = 3 * time.Second
	// maxPublishing bounds the eventfx Publish calls in flight at once:
	// beyond it the pacer waits, and msgs/s says the rate was not offered.
	maxPublishing = 4096
)

// BenchmarkLatencyAtRate measures the latency a message sees at an
// ordinary load, from just before its publish to its handler, at 1,000
// and 10,000 messages a second on the embedded broker (8 partitions, 1,000
// keys in turn, 256-byte payloads), with acks from all in-sync replicas:
//
//   - franz-go: the floor, the raw kgo client producing asynchronously
//     (Produce, no linger: kgo's default is 10 ms) and a raw kgo group
//     consumer polling;
//   - eventfx: app.Publisher's Publish per message, each call on a
//     goroutine of its own (a service publishes from its handlers and
//     requests), into an eventfx handler (whole chain) by partition;
//   - eventfx-key: the same, consuming by key.
//
// By partition, Sarama fetches the 8 partitions in one request and hands
// each response to a goroutine per partition, all of which take their
// part before the next fetch; watermill-kafka then hands a partition's
// records to the router one at a time, each after the previous one's
// acknowledgement (four goroutine hand-offs a record). At 10,000/s a fetch
// brings about two records and a partition's records seldom queue, but a
// stall anywhere in that chain (a goroutine waiting for a processor, a
// garbage collection) holds up the records behind it on the partition:
// that, not the fetch settings, is what the by-partition tail is made of.
//
// A pacer offers the rate in an open loop: message i is due at i/rate;
// it sleeps until the next one is due, then sends every message due by
// then without waiting for earlier acknowledgements (Go's timers wake up
// to a millisecond late when the process is idle, so at 10,000/s it sends
// about ten at a time). Each run first waits for its consumer group (a
// probe message), then offers the rate for latencyWarmup unmeasured and
// latencyMeasure measured, and waits for every message to be handled. It
// reports the latencies of the measured messages (p50-ms, p90-ms, p99-ms,
// max-ms); msgs/s, the rate the pacer achieved over the measured messages
// (the requested one unless the publisher could not keep up); and
// cpu-µs/msg, the process's CPU time from the first paced message to the
// last handled one over the paced messages (publisher, consumer and the
// embedded broker together: at these rates mostly the broker's and the
// clients' system calls and wake-ups, about the same for the three).
//
// b.N is not meaningful: each call of the benchmark is one measurement of
// a fixed duration, whatever b.N is, and ns/op is not reported. Run it
// with -benchtime 1x (with a count of iterations, go test calls it twice,
// and keeps the second):
//
//	go test -run '^$' -bench LatencyAtRate -benchtime 1x -count 5 ./internal/benchmarks | tee latency.txt
//	go run ./internal/benchmarks/ratios < latency.txt
func BenchmarkLatencyAtRate(b *testing.B) {
	systems := []struct {
		name  string
		setup func(b *testing.B, topic string, l *latencies) send
	}{
		{"franz-go", franzLatency},
		{"eventfx", eventfxLatency(config.ConsumePartition)},
		{"eventfx-key", eventfxLatency(config.ConsumeKey)},
	}
	for _, sys := range systems {
		b.Run(sys.name, func(b *testing.B) {
			for _, rate := range []int{1000, 10000} {
				b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) {
					measureLatency(b, rate, sys.setup)
				})
			}
		})
	}
}

// send sends message seq of a latency run, stamping its send time just
// before the client takes it. It must not wait for the acknowledgement.
type send func(seq int)

// latencies is a latency run's handler side: it records the latency of
// every measured message (seq >= warm) and counts the paced ones.
type latencies struct {
	warm, total int
	probed      chan struct{}
	probeOnce   sync.Once
	handled     atomic.Int64
	done        chan struct{}
	failed      atomic.Pointer[error]

	mu   sync.Mutex
	hist loadgen.Histogram
}

func newLatencies(warm, total int) *latencies {
	return &latencies{warm: warm, total: total, probed: make(chan struct{}), done: make(chan struct{})}
}

// received is a message's arrival, now, given its two headers. Messages
// are counted, not deduplicated: every system here delivers each once in
// a run without failures.
func (l *latencies) received(now time.Time, seqHdr, sentHdr string) {
	seq, err := strconv.Atoi(seqHdr)
	if err != nil {
		return // not one of the run's
	}
	if seq < 0 {
		l.probeOnce.Do(func() { close(l.probed) })
		return
	}
	if seq >= l.warm {
		sent, err := strconv.ParseInt(sentHdr, 10, 64)
		if err != nil {
			return
		}
		l.mu.Lock()
		l.hist.Record(now.Sub(time.Unix(0, sent)))
		l.mu.Unlock()
	}
	if l.handled.Add(1) == int64(l.total) {
		close(l.done)
	}
}

// fail records the first error of a send.
func (l *latencies) fail(err error) { l.failed.CompareAndSwap(nil, &err) }

// measureLatency runs one measurement at rate: setup starts the system
// (its consumer recording into l) and returns its sender.
func measureLatency(b *testing.B, rate int, setup func(b *testing.B, topic string, l *latencies) send) {
	warm := rate * int(latencyWarmup/time.Millisecond) / 1000
	total := warm + rate*int(latencyMeasure/time.Millisecond)/1000
	l := newLatencies(warm, total)
	topic := kafkatest.Unique("latency")
	snd := setup(b, topic, l)

	// The probe, until one is handled: the group has joined and has its
	// partitions.
	probe := time.NewTicker(time.Second)
	defer probe.Stop()
	deadline := time.After(time.Minute)
	snd(-1)
	for probed := false; !probed; {
		select {
		case <-l.probed:
			probed = true
		case <-probe.C:
			snd(-1) // another, in case the first went before the group's offsets were reset
		case <-deadline:
			b.Fatal("no probe message was handled within a minute")
		}
	}

	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var firstMeasured time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; i < total; {
		if wait := time.Until(start.Add(due(i, rate))); wait > 0 {
			timer.Reset(wait)
			<-timer.C
		}
		// Every message due by now, at least message i.
		n := min(max(int(float64(time.Since(start))*float64(rate)/float64(time.Second))+1, i+1), total)
		for ; i < n; i++ {
			if i == warm {
				firstMeasured = time.Now()
			}
			snd(i)
		}
	}
	sentAll := time.Now()
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		b.Fatalf("handled %d of %d messages 30s after the last was sent", l.handled.Load(), total)
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if err := l.failed.Load(); err != nil {
		b.Fatalf("send: %v", *err)
	}
	l.mu.Lock()
	s := l.hist.Summary()
	l.mu.Unlock()
	if int(s.Count) != total-warm {
		b.Fatalf("measured %d latencies, want %d", s.Count, total-warm)
	}
	// The measured messages were sent from firstMeasured to sentAll, one
	// interval each.
	b.ReportMetric(float64(total-warm)/(sentAll.Sub(firstMeasured)+due(1, rate)).Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu)/1e3/float64(total), "cpu-µs/msg")
	b.ReportMetric(ms(s.P50), "p50-ms")
	b.ReportMetric(ms(s.P90), "p90-ms")
	b.ReportMetric(ms(s.P99), "p99-ms")
	b.ReportMetric(ms(s.Max), "max-ms")
	b.ReportMetric(0, "ns/op") // one fixed-duration measurement: b.N means nothing
}

// due is when message i of a run at rate per second is due, from the
// first's.
func due(i, rate int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / float64(rate))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latencyKey is message seq's key: benchKeys distinct keys in turn.
func latencyKey(seq int) string {
	if seq < 0 {
		return "probe"
	}
	return "key-" + strconv.Itoa(seq%benchKeys)
}

// franzLatency is the floor: a raw kgo producer (acks from all in-sync
// replicas, idempotent, no linger, eventfx's partitioner) and a raw kgo
// group consumer polling on a goroutine of its own.
func franzLatency(b *testing.B, topic string, l *latencies) send {
	prod := kafkatest.Client(b, brokerAddr, kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), efxkafka.Partitioner(benchConfig().Kafka))
	cons := kafkatest.Client(b, brokerAddr, kgo.ConsumerGroup(kafkatest.Unique("group")),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithCancel(context.Background())
	polling := make(chan struct{})
	b.Cleanup(func() { cancel(); <-polling }) // before the clients close
	go func() {
		defer close(polling)
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				now := time.Now()
				var seq, sent string
				for _, h := range r.Headers {
					switch h.Key {
					case latSeqHeader:
						seq = string(h.Value)
					case latSentHeader:
						sent = string(h.Value)
					}
				}
				l.received(now, seq, sent)
			})
		}
	}()
	return func(seq int) {
		r := &kgo.Record{Topic: topic, Key: []byte(latencyKey(seq)), Value: payload, Headers: []kgo.RecordHeader{
			{Key: latSeqHeader, Value: []byte(strconv.Itoa(seq))},
		}}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: latSentHeader, Value: []byte(strconv.FormatInt(time.Now().UnixNano(), 10))})
		prod.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				l.fail(err)
			}
		})
	}
}

// eventfxLatency is an eventfx service publishing with app.Publisher's
// Publish, one message per call, each call on a goroutine of its own (at
// most maxPublishing at once), and consuming in mode through the whole
// chain.
func eventfxLatency(mode string) func(b *testing.B, topic string, l *latencies) send {
	return func(b *testing.B, topic string, l *latencies) send {
		cfg := benchConfig(brokerAddr)
		cfg.Kafka.Consume = mode
		var pub *app.Publisher
		startApp(b,
			app.Core(cfg), app.KafkaModule, app.PublisherModule, app.SubscriberModule, fx.Populate(&pub),
			handlers.Register(handlers.Handler{Name: "bench", Topic: topic, Func: func(m *message.Message) ([]*message.Message, error) {
				l.received(time.Now(), m.Metadata.Get(latSeqHeader), m.Metadata.Get(latSentHeader))
				return nil, nil
			}}),
		)
		slots := make(chan struct{}, maxPublishing)
		var publishing sync.WaitGroup
		b.Cleanup(publishing.Wait) // before the service stops
		return func(seq int) {
			slots <- struct{}{}
			publishing.Add(1)
			go func() {
				defer publishing.Done()
				defer func() { <-slots }()
				_, err := pub.Publish(context.Background(), topic, payload, app.WithKey(latencyKey(seq)),
					app.WithHeader(latSeqHeader, strconv.Itoa(seq)),
					app.WithHeader(latSentHeader, strconv.FormatInt(time.Now().UnixNano(), 10)))
				if err != nil {
					l.fail(err)
				}
			}()
		}
	}
}
