package keyorder_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
)

// ackLog counts the acks of each record id across subscribers.
type ackLog struct {
	mu    sync.Mutex
	acks  map[string]int
	total atomic.Int64
}

func (a *ackLog) ack(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acks == nil {
		a.acks = map[string]int{}
	}
	a.acks[id]++
	a.total.Add(1)
}

// distinct is the number of records acked at least once.
func (a *ackLog) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acks)
}

// duplicates lists the records acked more than once.
func (a *ackLog) duplicates() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var dups []string
	for id, n := range a.acks {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", id, n))
		}
	}
	return dups
}

// TestResumeAfterDrain: a subscriber drained mid-stream commits its done
// prefix and, in the metadata, what it did beyond it; a second subscriber
// of the group resumes there: every record is acked exactly once overall,
// and the final commit is the end of every partition.
func TestResumeAfterDrain(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("resume")
	const keys, perKey = 30, 100
	produceKeyed(t, addr, topic, keys, perKey)
	group := kafkatest.Unique("resume")
	var log ackLog
	handle := func(msg *message.Message) bool {
		time.Sleep(200 * time.Microsecond)
		log.ack(msg.UUID)
		return true
	}

	first := newSubscriber(t, testConfig(addr, group))
	ch, err := first.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	wait := consume(ch, handle)
	kafkatest.Eventually(t, waitFor, func() bool { return log.total.Load() >= keys*perKey/3 },
		func() string { return fmt.Sprintf("want %d acks, got %d", keys*perKey/3, log.total.Load()) })
	stop(t, first)
	wait()
	firstAcks := log.distinct()
	require.Less(t, firstAcks, keys*perKey, "the first subscriber must stop mid-stream")

	second := newSubscriber(t, testConfig(addr, group))
	ch, err = second.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	wait = consume(ch, handle)
	kafkatest.Eventually(t, waitFor, func() bool { return log.distinct() == keys*perKey },
		func() string { return fmt.Sprintf("want %d distinct acks, got %d", keys*perKey, log.distinct()) })
	stop(t, second)
	wait()

	t.Logf("first subscriber acked %d records, the second %d", firstAcks, keys*perKey-firstAcks)
	assert.Empty(t, log.duplicates(), "records acked more than once")
	assert.Equal(t, int64(keys*perKey), log.total.Load(), "acks")
	assert.Equal(t, int64(keys*perKey), kafkatest.Committed(t, addr, group, topic), "committed offsets")
}

// TestDoneSetSkipsRedelivery: one early record is held (never acked) while
// every other record is acked; a drain gives up on it. The commit of its
// partition stops at the held record, and the next subscriber of the group
// redelivers only the held record: the done-set in the commit metadata
// tells it the others are done.
func TestDoneSetSkipsRedelivery(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("doneset")
	held := keyedRecord(topic, keyed{key: "held"})
	kafkatest.Produce(t, addr, held)
	const keys, perKey = 20, 50
	produceKeyed(t, addr, topic, keys, perKey)
	group := kafkatest.Unique("doneset")

	cfg := testConfig(addr, group)
	cfg.RevokeDrain = 200 * time.Millisecond
	first := newSubscriber(t, cfg)
	ch, err := first.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	var others atomic.Int64
	wait := consume(ch, func(msg *message.Message) bool {
		if msg.Metadata.Get(meta.Key) == "held" {
			<-msg.Context().Done() // released only when the drain gives up
			return false
		}
		others.Add(1)
		return true
	})
	kafkatest.Eventually(t, waitFor, func() bool { return others.Load() == keys*perKey },
		func() string { return fmt.Sprintf("want %d acks, got %d", keys*perKey, others.Load()) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, first.Drain(ctx), context.DeadlineExceeded, "the drain gives up on the held record")
	require.NoError(t, first.Close())
	wait()

	heldCommit := commits(t, addr, group, topic)[held.Partition]
	assert.Equal(t, held.Offset, heldCommit.At, "the held record's partition is committed up to it")
	assert.True(t, strings.HasPrefix(heldCommit.Metadata, "ko1:"), "its commit metadata holds the done-set: %q", heldCommit.Metadata)

	second := newSubscriber(t, testConfig(addr, group))
	ch, err = second.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	var (
		mu        sync.Mutex
		delivered []string
	)
	wait = consume(ch, func(msg *message.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		delivered = append(delivered, msg.UUID)
		return true
	})
	total := int64(1 + keys*perKey)
	kafkatest.Eventually(t, waitFor, func() bool { return kafkatest.Committed(t, addr, group, topic) == total },
		func() string { return fmt.Sprintf("want every partition committed to its end (%d records)", total) })
	stop(t, second)
	wait()
	assert.Equal(t, []string{keyed{key: "held"}.id()}, delivered, "the second subscriber redelivers only the held record")
}
