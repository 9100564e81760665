package keyorder_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/keyorder"
	"github.com/eventfx/eventfx/internal/meta"
)

// waitFor bounds every wait on the broker.
const waitFor = 30 * time.Second

// The test wire format: the message UUID and metadata as headers, the
// meta.Key metadata as the record key.
const (
	uuidHeader = "_watermill_message_uuid"
	seqHeader  = "seq"
)

// testPublisher publishes Watermill messages with a kgo client, in the test
// wire format.
type testPublisher struct{ client *kgo.Client }

func newTestPublisher(t *testing.T, addr string) testPublisher {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	require.NoError(t, err, "publisher client")
	return testPublisher{client: c}
}

func (p testPublisher) Publish(topic string, msgs ...*message.Message) error {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = toRecord(topic, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return p.client.ProduceSync(ctx, recs...).FirstErr()
}

func (p testPublisher) Close() error {
	p.client.Close()
	return nil
}

func toRecord(topic string, m *message.Message) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: m.Payload}
	if key := m.Metadata.Get(meta.Key); key != "" {
		r.Key = []byte(key)
	}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: uuidHeader, Value: []byte(m.UUID)})
	for k, v := range m.Metadata {
		if k != meta.Key {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return r
}

// unmarshal is the reverse of toRecord.
func unmarshal(r *kgo.Record) *message.Message {
	msg := message.NewMessage("", r.Value)
	for _, h := range r.Headers {
		if h.Key == uuidHeader {
			msg.UUID = string(h.Value)
			continue
		}
		msg.Metadata.Set(h.Key, string(h.Value))
	}
	if len(r.Key) > 0 {
		msg.Metadata.Set(meta.Key, string(r.Key))
	}
	return msg
}

// logger shows the subscriber's warnings and errors.
func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testConfig is a config for tests on the broker at addr: short group
// timings, frequent commits, quick resends.
func testConfig(addr, group string) keyorder.Config {
	return keyorder.Config{
		Brokers:           []string{addr},
		Group:             group,
		Opts:              []kgo.Opt{kgo.AllowAutoTopicCreation()},
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		RebalanceTimeout:  5 * time.Second,
		CommitInterval:    100 * time.Millisecond,
		RevokeDrain:       2 * time.Second,
		NackResendSleep:   10 * time.Millisecond,
		Unmarshal:         unmarshal,
		Logger:            logger(),
	}
}

// newSubscriber returns a subscriber of cfg, closed at cleanup.
func newSubscriber(t *testing.T, cfg keyorder.Config) *keyorder.Subscriber {
	t.Helper()
	sub, err := keyorder.New(cfg)
	require.NoError(t, err, "new subscriber")
	t.Cleanup(func() { assert.NoError(t, sub.Close(), "close subscriber at cleanup") })
	return sub
}

// commits returns the group's committed offsets of topic by partition.
func commits(t *testing.T, addr, group, topic string) map[int32]kadm.Offset {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	offs, err := kadm.NewClient(kafkatest.Client(t, addr)).FetchOffsets(ctx, group)
	require.NoError(t, err, "committed offsets of %s", group)
	out := map[int32]kadm.Offset{}
	for p, o := range offs[topic] {
		require.NoError(t, o.Err, "committed offset of %s partition %d", topic, p)
		out[p] = o.Offset
	}
	return out
}

// keyed is one test record: key and sequence number within the key.
type keyed struct {
	key string
	seq int
}

func (k keyed) id() string { return fmt.Sprintf("%s/%d", k.key, k.seq) }

// produceKeyed writes perKey records for each of keys keys, interleaved
// (every key's seq 0, then every key's seq 1, ...), with UUID key/seq. It
// returns the records with their partitions and offsets.
func produceKeyed(t *testing.T, addr, topic string, keys, perKey int) []*kgo.Record {
	t.Helper()
	var recs []*kgo.Record
	for seq := range perKey {
		for k := range keys {
			recs = append(recs, keyedRecord(topic, keyed{key: fmt.Sprintf("k%03d", k), seq: seq}))
		}
	}
	kafkatest.Produce(t, addr, recs...)
	return recs
}

func keyedRecord(topic string, k keyed) *kgo.Record {
	return &kgo.Record{
		Topic: topic, Key: []byte(k.key), Value: []byte(k.id()),
		Headers: []kgo.RecordHeader{
			{Key: uuidHeader, Value: []byte(k.id())},
			{Key: seqHeader, Value: []byte(strconv.Itoa(k.seq))},
		},
	}
}

// keyOf reads a message of keyedRecord.
func keyOf(t testing.TB, msg *message.Message) keyed {
	seq, err := strconv.Atoi(msg.Metadata.Get(seqHeader))
	if err != nil {
		t.Errorf("message %s: seq header: %v", msg.UUID, err)
	}
	return keyed{key: msg.Metadata.Get(meta.Key), seq: seq}
}

// consume hands every message of ch to handle in a goroutine of its own,
// as Watermill's router does, and acks it if handle returns true, nacks it
// otherwise. The returned function waits until ch is closed and every
// handler returned.
func consume(ch <-chan *message.Message, handle func(*message.Message) bool) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for msg := range ch {
			wg.Go(func() {
				if handle(msg) {
					msg.Ack()
				} else {
					msg.Nack()
				}
			})
		}
	})
	return wg.Wait
}

// stop drains and closes sub, failing the test on errors.
func stop(t *testing.T, sub *keyorder.Subscriber) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, sub.Drain(ctx), "drain")
	require.NoError(t, sub.Close(), "close")
}

func TestNewValidates(t *testing.T) {
	valid := keyorder.Config{Brokers: []string{"localhost:9092"}, Group: "g", Unmarshal: unmarshal}
	tests := []struct {
		name   string
		change func(*keyorder.Config)
		want   []string // substrings of the error; none = valid
	}{
		{name: "minimal", change: func(*keyorder.Config) {}},
		{
			name:   "required fields",
			change: func(c *keyorder.Config) { *c = keyorder.Config{} },
			want:   []string{"Brokers: required", "Group: required", "Unmarshal: required"},
		},
		{
			name: "negative values",
			change: func(c *keyorder.Config) {
				c.MaxInFlight, c.MaxOutstanding, c.PartitionWindow = -1, -1, -1
				c.CommitInterval, c.NackResendSleep = -time.Second, -time.Second
			},
			want: []string{"MaxInFlight", "MaxOutstanding", "PartitionWindow", "CommitInterval", "NackResendSleep"},
		},
		{
			name:   "revoke drain beyond the rebalance timeout",
			change: func(c *keyorder.Config) { c.RebalanceTimeout, c.RevokeDrain = 5*time.Second, 5*time.Second },
			want:   []string{"RevokeDrain: 5s must be shorter than RebalanceTimeout (5s)"},
		},
		{
			name:   "default revoke drain beyond a short rebalance timeout",
			change: func(c *keyorder.Config) { c.RebalanceTimeout = 3 * time.Second },
			want:   []string{"RevokeDrain: 10s must be shorter"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			_, err := keyorder.New(cfg)
			msg := fmt.Sprint(err)
			assert.Equal(t, len(tt.want) == 0, err == nil, "error: %v", err)
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
		})
	}
}

func TestSubscribeAfterClose(t *testing.T) {
	sub, err := keyorder.New(keyorder.Config{Brokers: []string{"localhost:9092"}, Group: "g", Unmarshal: unmarshal})
	require.NoError(t, err)
	require.NoError(t, sub.Close())
	require.NoError(t, sub.Close(), "a second Close")
	_, err = sub.Subscribe(context.Background(), "topic")
	require.ErrorContains(t, err, "subscriber closed")
	require.ErrorContains(t, sub.Joined(), "consumer group g: not joined (starting or rebalancing)")
}
