package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
)

// readCommitted returns the records of topic a read_committed consumer
// sees: at least n, and whatever follows them within half a second.
func readCommitted(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: want %d records, got %d", topic, n, len(out))
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	for {
		idle, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(idle)
		cancel()
		got := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); got++ })
		if got == 0 {
			return out
		}
	}
}

// A relay that published a batch in its Kafka transaction and died before
// deleting it: the next relay deletes the batch without publishing it
// again.
func TestExactlyOnceRelayDoesNotRepublishWhatADeadRelayPublished(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	topic := kafkatest.Unique("orders")
	ctx := context.Background()
	const events = 300

	writer := outboxConfig(addr, dsn)
	writer.Outbox.Disabled = true
	w := start(t, writer)
	require.NoError(t, w.ob.Tx(ctx, func(tx pgx.Tx) error {
		for i := range events {
			if _, err := w.ob.Publish(ctx, tx, topic, OrderPlaced{Order: fmt.Sprintf("o-%d", i%7), Seq: i}); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err := w.ob.Pool().Exec(ctx, "CREATE TABLE snapshot AS SELECT * FROM eventfx_outbox")
	require.NoError(t, err)

	relay := func() *service {
		cfg := outboxConfig(addr, dsn)
		cfg.Service = "shop" // the same transactional IDs: the second relay takes over the first's slots
		cfg.Outbox.ExactlyOnce = true
		cfg.Outbox.BatchSize = 50
		return start(t, cfg)
	}
	first := relay()
	recs := readCommitted(t, addr, topic, events)
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		st, err := outbox.ReadStatus(ctx, w.ob.Pool())
		return err == nil && st.Rows == 0
	}, func() string { return "outbox not empty" })
	first.app.RequireStop()

	// The dead relay's state: published, not deleted.
	_, err = w.ob.Pool().Exec(ctx, "INSERT INTO eventfx_outbox OVERRIDING SYSTEM VALUE SELECT * FROM snapshot")
	require.NoError(t, err)
	second := relay()
	kafkatest.Eventually(t, 20*time.Second, func() bool {
		st, err := outbox.ReadStatus(ctx, w.ob.Pool())
		return err == nil && st.Rows == 0
	}, func() string { return "the second relay did not clear the outbox" })
	_ = second
	assert.Equal(t, events, len(recs), "the first relay: each event once")
	again := readCommitted(t, addr, topic, events)
	require.Equal(t, events, len(again), "the second relay published nothing again")
	next := map[string]int{}
	for _, e := range eventsOf(t, again) {
		require.Equal(t, next[e.Order], e.Seq/7, "order %s out of order", e.Order)
		next[e.Order]++
	}
}

func TestTwoExactlyOnceRelaysShareTheWorkWithoutRepeats(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	cfg := outboxConfig(addr, dsn)
	cfg.Service = "shop"
	cfg.Outbox.ExactlyOnce = true
	cfg.Outbox.PollInterval = 20 * time.Millisecond
	cfg.Outbox.BatchSize = 50
	a := start(t, cfg)
	b := start(t, cfg)
	topic := kafkatest.Unique("orders")
	ctx := context.Background()
	const keys, perKey = 50, 40
	for i := range perKey {
		require.NoError(t, a.ob.Tx(ctx, func(tx pgx.Tx) error {
			for k := range keys {
				if _, err := a.ob.Publish(ctx, tx, topic, OrderPlaced{Order: fmt.Sprintf("o-%d", k), Seq: i}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	recs := readCommitted(t, addr, topic, keys*perKey)
	require.Equal(t, keys*perKey, len(recs), "each event once")
	next := map[string]int{}
	for _, e := range eventsOf(t, recs) {
		require.Equal(t, next[e.Order], e.Seq, "order %s", e.Order)
		next[e.Order]++
	}
	t.Logf("rows done: relay a %v, relay b %v", published(t, a), published(t, b))
}

// A row that commits after a later-inserted row of its slot was published
// is published too: the relay's state names the rows it published, not
// the highest seq.
func TestExactlyOnceRelayPublishesARowThatCommitsLate(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	cfg := outboxConfig(addr, pgtest.DSN(t))
	cfg.Service = "shop"
	cfg.Outbox.ExactlyOnce = true
	cfg.Outbox.PollInterval = 20 * time.Millisecond
	s := start(t, cfg)
	topic := kafkatest.Unique("orders")
	ctx := context.Background()
	// Two keys of one slot.
	late, early := "k-0", ""
	for i := 1; early == ""; i++ {
		if k := fmt.Sprintf("k-%d", i); outbox.SlotOf(k) == outbox.SlotOf(late) {
			early = k
		}
	}

	slow, err := s.ob.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = s.ob.Publish(ctx, slow, topic, OrderPlaced{Order: late}) // the lower seq, not committed yet
	require.NoError(t, err)
	require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
		_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: early})
		return err
	}))
	first := eventsOf(t, readCommitted(t, addr, topic, 1))
	require.Equal(t, []OrderPlaced{{Order: early}}, first)
	require.NoError(t, slow.Commit(ctx))

	both := eventsOf(t, readCommitted(t, addr, topic, 2))
	assert.Equal(t, []OrderPlaced{{Order: early}, {Order: late}}, both)
}
