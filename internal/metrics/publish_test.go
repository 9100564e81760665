package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/metrics"
)

// broker accepts every topic but "down".
type broker struct{ closed bool }

func (b *broker) Publish(topic string, _ ...*message.Message) error {
	if topic == "down" {
		return errors.New("no leader")
	}
	return nil
}

func (b *broker) PublishContext(_ context.Context, topic string, msgs ...*message.Message) error {
	return b.Publish(topic, msgs...)
}

func (b *broker) Close() error { b.closed = true; return nil }

func msgs(n int) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		out[i] = message.NewMessage(fmt.Sprint(i), nil)
	}
	return out
}

func TestPublisherCountsMessagesByTopicAndOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := metrics.NewPublishes(reg)
	require.NoError(t, err)
	b := &broker{}
	pub := p.Wrap(b)

	require.NoError(t, pub.Publish("orders", msgs(2)...))
	require.NoError(t, pub.Publish("orders", msgs(1)...))
	assert.Error(t, pub.Publish("down", msgs(3)...))
	require.NoError(t, pub.Close())

	assert.True(t, b.closed, "Close reaches the wrapped publisher")
	assert.Equal(t, map[string]float64{
		`eventfx_messages_published_total{outcome="published",topic="orders"}`: 3,
		`eventfx_messages_published_total{outcome="failed",topic="orders"}`:    0,
		`eventfx_messages_published_total{outcome="published",topic="down"}`:   0,
		`eventfx_messages_published_total{outcome="failed",topic="down"}`:      3,
		`eventfx_publish_duration_seconds{topic="orders"}`:                     2,
		`eventfx_publish_duration_seconds{topic="down"}`:                       1,
	}, gather(t, reg))
}

func TestPublisherCountsTopicsPastMaxTopicsAsOther(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := metrics.NewPublishes(reg)
	require.NoError(t, err)
	pub := p.Wrap(&broker{})

	for i := range metrics.MaxTopics + 3 {
		require.NoError(t, pub.Publish(fmt.Sprintf("t%d", i), msgs(1)...))
	}
	require.NoError(t, pub.Publish("t0", msgs(1)...))

	got := gather(t, reg)
	assert.Len(t, got, 3*(metrics.MaxTopics+1), "series: MaxTopics topics and (other), three each")
	assert.Equal(t, 2.0, got[`eventfx_messages_published_total{outcome="published",topic="t0"}`])
	assert.Equal(t, 3.0, got[`eventfx_messages_published_total{outcome="published",topic="(other)"}`])
}
