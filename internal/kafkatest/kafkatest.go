// Package kafkatest helps eventfx's own tests on the embedded broker: a
// broker per test, a config tuned for tests, and an independent Kafka client
// (franz-go) to put records on the wire and read them back.
package kafkatest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/meta"
)

// Broker starts an embedded broker for the test and closes it at cleanup.
func Broker(t testing.TB) string {
	t.Helper()
	b, err := broker.Start(broker.Config{Partitions: 4})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

var seq atomic.Int64

// Unique returns a name unique within the test binary, for topics and groups.
func Unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, seq.Add(1))
}

// Config is a config for tests on the broker at addr: a fresh service name
// and poison topic, short group timings and retry delays.
func Config(addr string) config.Config {
	return Tune(config.Config{
		Kafka: config.Kafka{Brokers: []string{addr}},
		Retry: config.Retry{
			MaxRetries:      3,
			InitialInterval: 5 * time.Millisecond,
			MaxInterval:     20 * time.Millisecond,
			AttemptTimeout:  5 * time.Second,
		},
	}).WithDefaults()
}

// Client returns a franz-go client of addr, closed at cleanup.
func Client(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Produce writes records with the independent client and waits for acks.
func Produce(t testing.TB, addr string, recs ...*kgo.Record) {
	t.Helper()
	c := Client(t, addr, kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// Read returns the first n records of topic (all partitions, from the
// start), failing the test if fewer arrive within timeout.
func Read(t testing.TB, addr, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	c := Client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: want %d records within %s, got %d: %s", topic, n, timeout, len(out), Describe(out))
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// Count returns how many records topic holds (0 if it does not exist).
func Count(t testing.TB, addr, topic string) int64 {
	t.Helper()
	adm := kadm.NewClient(Client(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// Committed returns the group's committed offsets of topic, summed over
// partitions (the number of records committed past, when it started at 0).
func Committed(t testing.TB, addr, group, topic string) int64 {
	t.Helper()
	adm := kadm.NewClient(Client(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("committed offsets of %s: %v", group, err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n
}

// Headers returns a record's headers as a map.
func Headers(r *kgo.Record) map[string]string {
	m := make(map[string]string, len(r.Headers))
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// Describe renders records for failure messages.
func Describe(recs []*kgo.Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "\n  %s/%d@%d key=%q value=%q headers=%v", r.Topic, r.Partition, r.Offset, r.Key, r.Value, Headers(r))
	}
	return b.String()
}

// Eventually waits until cond holds, failing with msg() after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tune gives cfg the short timings of tests where it has none: consumer
// group session, heartbeat, rebalance and commit intervals, the shutdown
// timeout, and a fresh service name and poison topic. eventfxtest's Env
// and eventfx's own tests run on these.
func Tune(cfg config.Config) config.Config {
	k := &cfg.Kafka
	k.SessionTimeout = cmp.Or(k.SessionTimeout, 2*time.Second)
	k.HeartbeatInterval = cmp.Or(k.HeartbeatInterval, 200*time.Millisecond)
	k.RebalanceTimeout = cmp.Or(k.RebalanceTimeout, 2*time.Second)
	k.CommitInterval = cmp.Or(k.CommitInterval, 100*time.Millisecond)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, 10*time.Second)
	cfg.Service = cmp.Or(cfg.Service, Unique("svc"))
	cfg.Poison.Topic = cmp.Or(cfg.Poison.Topic, Unique("poison"))
	return cfg
}

// KeyByPayload returns a copy of m keyed by its payload, as app.WithKey
// would key it (Watermill's conformance suite puts the order test's
// "type" there).
func KeyByPayload(m *message.Message) *message.Message {
	c := m.Copy()
	c.Metadata.Set(meta.Key, string(c.Payload))
	return c
}

// Buffer is a bytes.Buffer that loggers on several goroutines can share.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
