package intake_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/intake"
)

type countingSubscriber struct {
	ch                 chan *message.Message
	subscribes, closes atomic.Int32
}

func (s *countingSubscriber) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	s.subscribes.Add(1)
	return s.ch, nil
}

func (s *countingSubscriber) Close() error {
	s.closes.Add(1)
	return nil
}

// TestShareHandsOutOneSubscription: every subscriber is handed the channel
// of the one subscription; a second topic is refused, and the subscriber
// is closed once.
func TestShareHandsOutOneSubscription(t *testing.T) {
	sub := &countingSubscriber{ch: make(chan *message.Message)}
	ins := intake.Share(sub, 3)
	require.Len(t, ins, 3)
	for _, in := range ins {
		ch, err := in.Subscribe(context.Background(), "t")
		require.NoError(t, err)
		assert.Equal(t, (<-chan *message.Message)(sub.ch), ch)
	}
	_, err := ins[1].Subscribe(context.Background(), "other")
	assert.ErrorContains(t, err, "subscription is to t")
	for _, in := range ins {
		require.NoError(t, in.Close())
	}
	assert.Equal(t, int32(1), sub.subscribes.Load(), "subscriptions")
	assert.Equal(t, int32(1), sub.closes.Load(), "closes")
}
