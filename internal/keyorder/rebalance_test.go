package keyorder_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
)

// TestRebalance: while records keep arriving, a second member joins the
// group (half the partitions move to it: revoke, hole filling, commit), then
// the first member drains and closes (the rest move). No record is lost, no
// key runs on both members at once, each key's first acks stay in order,
// and duplicates are counted (the target is none).
func TestRebalance(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("rebalance")
	group := kafkatest.Unique("rebalance")
	const keys = 40

	// The producer writes a batch of one record per key every few
	// milliseconds, each key's seq counting up, until told to stop.
	producer := kafkatest.Client(t, addr, kgo.AllowAutoTopicCreation())
	var produced atomic.Int64
	stopProducing := make(chan struct{})
	producerDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		for seq := 0; ; seq++ {
			select {
			case <-stopProducing:
				producerDone <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
			batch := make([]*kgo.Record, keys)
			for k := range keys {
				batch[k] = keyedRecord(topic, keyed{key: fmt.Sprintf("k%03d", k), seq: seq})
			}
			if err := producer.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				producerDone <- err
				return
			}
			produced.Add(keys)
		}
	}()

	var (
		running  [keys]atomic.Int32
		overlaps atomic.Int64
		mu       sync.Mutex
		acks     = map[keyed]int{}
		lastSeq  = map[string]int{} // the key's highest first-acked seq
		regress  []string
	)
	handle := func(msg *message.Message) bool {
		k := keyOf(t, msg)
		var idx int
		fmt.Sscanf(k.key, "k%d", &idx)
		if !running[idx].CompareAndSwap(0, 1) {
			overlaps.Add(1)
		}
		time.Sleep(rand.N(2 * time.Millisecond))
		mu.Lock()
		acks[k]++
		if last, seen := lastSeq[k.key]; acks[k] == 1 && seen && k.seq < last {
			regress = append(regress, fmt.Sprintf("%s after seq %d", k.id(), last))
		}
		if acks[k] == 1 {
			lastSeq[k.key] = max(lastSeq[k.key], k.seq)
		}
		mu.Unlock()
		running[idx].Store(0)
		return true
	}
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}

	first := newSubscriber(t, testConfig(addr, group))
	ch, err := first.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	waitFirst := consume(ch, handle)
	kafkatest.Eventually(t, waitFor, func() bool { return distinct() >= 500 },
		func() string { return fmt.Sprintf("the first member acks 500 records; got %d", distinct()) })

	second := newSubscriber(t, testConfig(addr, group))
	ch, err = second.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	waitSecond := consume(ch, handle)
	kafkatest.Eventually(t, waitFor, func() bool {
		return second.Joined() == nil && len(second.Stats().Partitions) > 0 && first.Joined() == nil
	}, func() string {
		return fmt.Sprintf("both members joined with partitions: first %v %+v, second %v %+v",
			first.Joined(), first.Stats().Partitions, second.Joined(), second.Stats().Partitions)
	})
	afterJoin := distinct()
	kafkatest.Eventually(t, waitFor, func() bool { return distinct() >= afterJoin+500 },
		func() string { return fmt.Sprintf("500 more acks after the join; got %d", distinct()-afterJoin) })

	stop(t, first)
	waitFirst()
	afterClose := distinct()
	kafkatest.Eventually(t, waitFor, func() bool { return distinct() >= afterClose+500 },
		func() string {
			return fmt.Sprintf("the second member acks 500 more records; got %d", distinct()-afterClose)
		})
	close(stopProducing)
	require.NoError(t, <-producerDone, "produce")
	total := int(produced.Load())
	kafkatest.Eventually(t, waitFor, func() bool { return distinct() == total },
		func() string { return fmt.Sprintf("want all %d records acked, got %d", total, distinct()) })
	stop(t, second)
	waitSecond()

	mu.Lock()
	defer mu.Unlock()
	var duplicates int
	for _, n := range acks {
		duplicates += n - 1
	}
	t.Logf("%d records, %d duplicates, %d key overlaps", total, duplicates, overlaps.Load())
	assert.Len(t, acks, total, "records acked (none lost)")
	assert.LessOrEqual(t, duplicates, 10, "duplicates across the rebalances")
	assert.Zero(t, overlaps.Load(), "a key ran on two handlers at once")
	assert.Empty(t, regress, "first acks out of their key's order")
	assert.Equal(t, int64(total), kafkatest.Committed(t, addr, group, topic), "committed offsets")
}
