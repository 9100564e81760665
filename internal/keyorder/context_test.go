package keyorder_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/keyorder"
	"github.com/eventfx/eventfx/internal/meta"
)

type ctxKey struct{}

// TestSubscribeContext: a message's context carries the Subscribe
// context's values and the record's position, but not its cancellation:
// Watermill's router cancels that context as soon as it starts closing,
// and the handler in flight must still finish. The subscription then stops
// gracefully: the message is acked and committed, and the channel closes.
func TestSubscribeContext(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("ctx")
	rec := keyedRecord(topic, keyed{key: "k000"})
	kafkatest.Produce(t, addr, rec)
	cfg := testConfig(addr, kafkatest.Unique("ctx"))
	sub := newSubscriber(t, cfg)

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "value"))
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	var msg *message.Message
	select {
	case msg = <-ch:
	case <-time.After(waitFor):
		t.Fatal("no message within", waitFor)
	}
	assert.Equal(t, "value", msg.Context().Value(ctxKey{}), "the Subscribe context's value")
	pos, ok := meta.Record(msg.Context())
	assert.True(t, ok, "the record's position is in the context")
	assert.Equal(t, meta.Position{Partition: rec.Partition, Offset: rec.Offset}, pos)

	cancel()
	// The handler's work outlives the cancellation; RevokeDrain (2 s)
	// bounds how long the subscription waits for it.
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, msg.Context().Err(), "the message's context after the Subscribe context ended")
	msg.Ack()
	select {
	case _, open := <-ch:
		require.False(t, open, "no other message")
	case <-time.After(waitFor):
		t.Fatal("the channel is not closed within", waitFor)
	}
	assert.Equal(t, int64(1), kafkatest.Committed(t, addr, cfg.Group, topic), "committed offsets")
	assert.Error(t, sub.Joined(), "a stopped subscription is not joined")
	assert.ErrorIs(t, msg.Context().Err(), context.Canceled, "the message's context after its ack")
}

// TestCloseWithUnreadMessages: a receiver that stops reading leaves lanes
// waiting to hand out their messages; Close stops them at once, without
// waiting RevokeDrain for messages that were never handed out, and loses
// nothing: the group's next member gets every record but the acked one.
func TestCloseWithUnreadMessages(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("unread")
	recs := produceKeyed(t, addr, topic, 40, 1)
	cfg := testConfig(addr, kafkatest.Unique("unread"))
	// Only messages handed out may hold Close, for up to RevokeDrain.
	cfg.RebalanceTimeout, cfg.RevokeDrain = 2*waitFor, waitFor
	sub, err := keyorder.New(cfg)
	require.NoError(t, err)

	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	var acked *message.Message
	select {
	case acked = <-ch:
	case <-time.After(waitFor):
		t.Fatal("no message within", waitFor)
	}
	acked.Ack()
	// Every other key's lane is now waiting for a receiver.
	require.Eventually(t, func() bool { return sub.Stats().Lanes == len(recs)-1 }, waitFor, 10*time.Millisecond,
		"lanes waiting to hand out a message")

	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err, "close")
	case <-time.After(cfg.RevokeDrain / 3):
		t.Fatal("Close waits for messages never handed out")
	}
	for msg := range ch {
		t.Errorf("message %s handed out after Close", msg.UUID)
	}

	next := newSubscriber(t, cfg)
	ch, err = next.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	got := map[string]int{}
	for len(got) < len(recs)-1 {
		select {
		case msg := <-ch:
			got[msg.UUID]++
			msg.Ack()
		case <-time.After(waitFor):
			t.Fatalf("the next member got %d of the %d records not acked", len(got), len(recs)-1)
		}
	}
	assert.NotContains(t, got, acked.UUID, "the acked record again")
	for id, n := range got {
		assert.Equal(t, 1, n, "deliveries of %s", id)
	}
}
