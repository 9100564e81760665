package keyorder_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/keyorder"
	"github.com/eventfx/eventfx/internal/meta"
)

// TestStuckKey: one key is nacked forever. It stalls only its partition,
// which is paused once PartitionWindow records are done behind the stuck
// one; every other partition's records are handled, the stuck partition's
// window stays within PartitionWindow + MaxOutstanding, the outstanding
// records within MaxOutstanding, and only the stuck key's lane keeps a
// goroutine.
func TestStuckKey(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("stuck")
	stuck := keyedRecord(topic, keyed{key: "stuck"})
	kafkatest.Produce(t, addr, stuck)
	const keys, perKey = 40, 100
	recs := produceKeyed(t, addr, topic, keys, perKey)
	perPartition := map[int32]int{}
	for _, r := range recs {
		perPartition[r.Partition]++
	}

	cfg := testConfig(addr, kafkatest.Unique("stuck"))
	cfg.MaxOutstanding, cfg.PartitionWindow, cfg.MaxInFlight = 400, 100, 32
	sub := newSubscriber(t, cfg)
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)

	var mu sync.Mutex
	acked := map[int32]int{} // per partition
	wait := consume(ch, func(msg *message.Message) bool {
		if msg.Metadata.Get(meta.Key) == "stuck" {
			return false
		}
		pos, ok := meta.Record(msg.Context())
		assert.True(t, ok, "message %s has no record position", msg.UUID)
		mu.Lock()
		acked[pos.Partition]++
		mu.Unlock()
		return true
	})
	othersDone := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for p, n := range perPartition {
			if p != stuck.Partition && acked[p] != n {
				return false
			}
		}
		return true
	}
	describe := func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("stuck partition %d; produced per partition %v, acked %v; stats %+v", stuck.Partition, perPartition, acked, sub.Stats())
	}
	kafkatest.Eventually(t, waitFor, othersDone, describe)
	// Once the others are done, only the stuck key's lane has work left.
	kafkatest.Eventually(t, waitFor, func() bool { return sub.Stats().Lanes == 1 }, describe)

	st := sub.Stats()
	t.Logf("with a stuck key: %+v", st)
	var stuckStats keyorder.PartitionStats
	for _, p := range st.Partitions {
		if p.Partition == stuck.Partition {
			stuckStats = p
		}
	}
	assert.True(t, stuckStats.Paused, "the stuck partition is paused: %s", describe())
	assert.GreaterOrEqual(t, stuckStats.Held, cfg.PartitionWindow, "records done behind the stuck one: %s", describe())
	assert.LessOrEqual(t, stuckStats.Window, cfg.PartitionWindow+cfg.MaxOutstanding, "stuck partition's window: %s", describe())
	assert.LessOrEqual(t, st.Outstanding, cfg.MaxOutstanding, "outstanding records: %s", describe())
	mu.Lock()
	stuckAcked := acked[stuck.Partition]
	mu.Unlock()
	assert.Less(t, stuckAcked, perPartition[stuck.Partition], "the paused partition stopped delivering: %s", describe())
	kafkatest.Eventually(t, waitFor, func() bool {
		c, ok := commits(t, addr, cfg.Group, topic)[stuck.Partition]
		return ok && c.At == stuck.Offset
	}, func() string {
		return fmt.Sprintf("the stuck partition's commit stops at the stuck record, offset %d; commits %v", stuck.Offset, commits(t, addr, cfg.Group, topic))
	})

	stop(t, sub)
	wait()
}
