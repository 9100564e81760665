package poison_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/routing"
)

// seen counts a handler's calls per message ID.
type seen struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *seen) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[id]++
}

func (s *seen) get(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[id]
}

// counted is a handler function that counts its messages in s.
func counted(s *seen) func(context.Context, order) error {
	return func(ctx context.Context, _ order) error {
		s.add(handlers.MessageID(ctx))
		return nil
	}
}

// startService starts a service of cfg with hs on the embedded broker,
// stopped at cleanup.
func startService(t *testing.T, cfg config.Config, hs ...handlers.Handler) {
	t.Helper()
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, handlers.Register(hs...))
	a.RequireStart()
	t.Cleanup(a.RequireStop)
}

type order struct {
	ID string `json:"id"`
}

// Two services share a topic and a poison topic: billing has handlers bill
// and ship, audit a handler also named bill. Billing's bill fails a
// message, which is poisoned; the replay reaches billing's bill only: the
// two handlers that handled it the first time do not handle it again.
func TestReplayReachesOnlyTheHandlerThatFailed(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	billing := kafkatest.Config(addr)
	audit := kafkatest.Config(addr)
	audit.Poison.Topic = billing.Poison.Topic
	topic := kafkatest.Unique("orders")
	var fixed atomic.Bool
	var billed, shipped, audited seen
	startService(t, billing,
		handlers.New("bill", topic, func(ctx context.Context, o order) error {
			billed.add(handlers.MessageID(ctx))
			if o.ID == "bad" && !fixed.Load() {
				return handlers.Permanent(fmt.Errorf("order %s: card declined", o.ID))
			}
			return nil
		}),
		handlers.New("ship", topic, counted(&shipped)))
	startService(t, audit, handlers.New("bill", topic, counted(&audited)))

	kafkatest.Produce(t, addr, keyed(record(topic, "m-1", `{"id":"bad"}`), "customer-1"))
	p := poison.Parse(kafkatest.Read(t, addr, billing.Poison.Topic, 1, testTimeout)[0])
	assert.Equal(t, routing.ConsumerGroup(billing, "bill"), p.ConsumerGroup)
	assert.Equal(t, billing.Service, p.Service, "eventfx_service names the service")
	kafkatest.Eventually(t, testTimeout, func() bool { return shipped.get("m-1") == 1 && audited.get("m-1") == 1 },
		func() string {
			return fmt.Sprintf("first delivery: ship saw m-1 %d times, audit's bill %d, want 1 each", shipped.get("m-1"), audited.get("m-1"))
		})

	fixed.Store(true)
	sum, err := dial(t, addr).Replay(testContext(t), poison.ReplayOptions{Topic: billing.Poison.Topic})
	require.NoError(t, err)
	require.Equal(t, 1, sum.Replayed, "%s", sum)
	kafkatest.Eventually(t, testTimeout, func() bool { return billed.get("m-1") == 2 },
		func() string {
			return fmt.Sprintf("billing's bill saw m-1 %d times, want 2: the replay did not reach it", billed.get("m-1"))
		})
	// A later event of the same key, on the same partition after the
	// replay: once the others saw it, they had their chance at the replay.
	kafkatest.Produce(t, addr, keyed(record(topic, "m-2", `{"id":"good"}`), "customer-1"))
	kafkatest.Eventually(t, testTimeout, func() bool { return shipped.get("m-2") == 1 && audited.get("m-2") == 1 },
		func() string {
			return fmt.Sprintf("sentinel m-2 not handled: ship %d, audit's bill %d", shipped.get("m-2"), audited.get("m-2"))
		})

	assert.Equal(t, 1, shipped.get("m-1"), "billing's ship handled the replay: it is not for its consumer group")
	assert.Equal(t, 1, audited.get("m-1"), "audit's bill (same handler name, another service) handled the replay")
	assert.Equal(t, 2, billed.get("m-1"), "billing's bill handled the replay once")
	assert.Equal(t, int64(1), kafkatest.Count(t, addr, billing.Poison.Topic), "the replay was not poisoned again")
}

// record builds a record the way eventfx writes one.
func record(topic, id, payload string) *kgo.Record {
	return &kgo.Record{Topic: topic, Value: []byte(payload), Headers: hdrs(poison.IDHeader, id, meta.ContentType, "application/json")}
}

func keyed(r *kgo.Record, key string) *kgo.Record {
	r.Key = []byte(key)
	return r
}

// A poison record that names no consumer group (written by another tool,
// or before eventfx wrote one) is replayed to every handler, as before.
func TestReplayOfARecordWithoutConsumerGroupReachesEveryHandler(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	var billed, shipped seen
	startService(t, cfg, handlers.New("bill", topic, counted(&billed)), handlers.New("ship", topic, counted(&shipped)))
	kafkatest.Produce(t, addr, &kgo.Record{Topic: cfg.Poison.Topic, Value: []byte(`{"id":"x"}`), Headers: hdrs(
		poison.IDHeader, "old-1", meta.TopicPoisoned, topic, meta.HandlerPoisoned, "bill", meta.ReasonPoisoned, "boom")})

	_, err := dial(t, addr).Replay(testContext(t), poison.ReplayOptions{Topic: cfg.Poison.Topic})

	require.NoError(t, err)
	kafkatest.Eventually(t, testTimeout, func() bool { return billed.get("old-1") == 1 && shipped.get("old-1") == 1 },
		func() string {
			return fmt.Sprintf("replay without a target: bill saw it %d times, ship %d, want 1 each", billed.get("old-1"), shipped.get("old-1"))
		})
}

// After a rename of the service, the handler's new consumer group gets the
// replay when ReplayOptions.ConsumerGroup names it.
func TestReplayForARenamedConsumerGroup(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	var billed, shipped seen
	startService(t, cfg, handlers.New("bill", topic, counted(&billed)), handlers.New("ship", topic, counted(&shipped)))
	kafkatest.Produce(t, addr, &kgo.Record{Topic: cfg.Poison.Topic, Key: []byte("k"), Value: []byte(`{"id":"x"}`), Headers: hdrs(
		poison.IDHeader, "r-1", meta.TopicPoisoned, topic, meta.HandlerPoisoned, "bill", meta.ReasonPoisoned, "boom",
		meta.ConsumerGroup, "before-the-rename.bill")})

	_, err := dial(t, addr).Replay(testContext(t), poison.ReplayOptions{
		Topic: cfg.Poison.Topic, Handler: "bill", ConsumerGroup: routing.ConsumerGroup(cfg, "bill")})

	require.NoError(t, err)
	kafkatest.Eventually(t, testTimeout, func() bool { return billed.get("r-1") == 1 },
		func() string { return "the renamed group's handler did not get the replay" })
	kafkatest.Produce(t, addr, keyed(record(topic, "s-1", `{"id":"y"}`), "k"))
	kafkatest.Eventually(t, testTimeout, func() bool { return shipped.get("s-1") == 1 },
		func() string { return "sentinel s-1 not handled by ship" })
	assert.Zero(t, shipped.get("r-1"), "ship handled a replay for bill")
}
