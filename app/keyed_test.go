package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/routing"
)

// onePartition produces recs to partition 0 of their topic, in order.
func onePartition(t *testing.T, addr string, recs ...*kgo.Record) {
	t.Helper()
	cl := kafkatest.Client(t, addr, kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, r := range recs {
		r.Partition = 0
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

// ordersBehind returns the records of an Order with ID first, then n
// others (o0, o1, ...), each of its own customer (key).
func ordersBehind(topic, first string, n int) []*kgo.Record {
	recs := []*kgo.Record{record(topic, "m-"+first, "", `{"id":"`+first+`"}`)}
	recs[0].Key = []byte("customer-" + first)
	for i := range n {
		r := record(topic, fmt.Sprintf("m-%d", i), "", fmt.Sprintf(`{"id":"o%d"}`, i))
		r.Key = []byte(fmt.Sprintf("customer-%d", i))
		recs = append(recs, r)
	}
	return recs
}

// timeline records when each message's attempts happened.
type timeline struct {
	mu       sync.Mutex
	attempts map[string][]time.Time
}

func (tl *timeline) add(id string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.attempts == nil {
		tl.attempts = map[string][]time.Time{}
	}
	tl.attempts[id] = append(tl.attempts[id], time.Now())
	return len(tl.attempts[id])
}

func (tl *timeline) get(id string) []time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]time.Time(nil), tl.attempts[id]...)
}

// In key mode a retry holds only the failing key: while one message of a
// partition waits for its next attempt, the messages of other keys behind
// it in the same partition are handled.
func TestKeyModeRetryHoldsOnlyTheFailingKey(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	cfg.Kafka.Consume = config.ConsumeKey
	cfg.Retry = config.Retry{MaxRetries: 2, InitialInterval: 300 * time.Millisecond, MaxInterval: time.Second, Jitter: 0.01}
	topic := kafkatest.Unique("orders")
	var tl timeline
	startSubscriber(t, cfg, handlers.New("billing", topic, func(ctx context.Context, o Order) error {
		if n := tl.add(o.ID); o.ID == "slow" && n < 3 {
			return errors.New("payment service busy")
		}
		return nil
	}))

	onePartition(t, addr, ordersBehind(topic, "slow", 10)...)

	kafkatest.Eventually(t, 30*time.Second, func() bool { return len(tl.get("slow")) == 3 },
		func() string { return fmt.Sprintf("slow attempted %d times", len(tl.get("slow"))) })
	slow := tl.get("slow")
	for i := range 10 {
		id := fmt.Sprintf("o%d", i)
		got := tl.get(id)
		require.Len(t, got, 1, "%s handled once", id)
		// Keys run in parallel: a message behind the failing one may even
		// start before its first attempt. By partition, each would wait
		// for the failing message's success.
		assert.True(t, got[0].Before(slow[1]),
			"%s, behind the failing message in the same partition, was handled at %s, not before its first retry (attempts at %s, %s, %s)",
			id, got[0].Format(time.StampMicro), slow[0].Format(time.StampMicro), slow[1].Format(time.StampMicro), slow[2].Format(time.StampMicro))
	}
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		return kafkatest.Committed(t, addr, routing.ConsumerGroup(cfg, "billing"), topic) == 11
	}, func() string { return "the partition is committed to its end once the retried message succeeded" })
}

// A handler can ask for key mode while the service consumes by partition.
func TestHandlerChoosesKeyModeInAPartitionModeService(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr) // kafka.consume: partition (the default)
	require.Equal(t, config.ConsumePartition, cfg.Kafka.Consume)
	topic := kafkatest.Unique("orders")
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	startSubscriber(t, cfg, handlers.New("billing", topic, func(ctx context.Context, o Order) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	}, handlers.ConsumeByKey(8)))

	var recs []*kgo.Record
	for i := range 4 {
		r := record(topic, fmt.Sprintf("m-%d", i), "", fmt.Sprintf(`{"id":"o%d"}`, i))
		r.Key = []byte(fmt.Sprintf("customer-%d", i))
		recs = append(recs, r)
	}
	onePartition(t, addr, recs...)
	kafkatest.Eventually(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return most == 4 },
		func() string {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprintf("at most %d of 4 keys of one partition in flight at once", most)
		})
	close(release)
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		return kafkatest.Committed(t, addr, routing.ConsumerGroup(cfg, "billing"), topic) == 4
	}, func() string { return "offsets committed" })
}
