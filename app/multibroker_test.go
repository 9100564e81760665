package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/router"
)

// TestThreeBrokers runs the transport against a cluster of three brokers
// leading the partitions between them, as a real cluster does, where the
// embedded broker is one: given one of them as the seed, the publisher's
// batch reaches every partition's leader, both consumption modes fetch
// from every broker, every message arrives once with its key's order, and
// the commits reach the end of every partition.
func TestThreeBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.DefaultNumPartitions(8), kfake.AllowAutoTopicCreation(),
		kfake.GroupMinSessionTimeout(100*time.Millisecond)) // kafkatest.Config uses 2 s
	require.NoError(t, err)
	t.Cleanup(c.Close)
	seed := c.ListenAddrs()[0]
	cfg := kafkatest.Config(seed)
	k := app.NewKafka(cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, k.Start(ctx))
	t.Cleanup(func() { _ = k.Close() })

	const keys, perKey = 40, 30
	topic := kafkatest.Unique("three")
	var msgs []*message.Message
	for seq := range perKey {
		for key := range keys {
			m := message.NewMessage(fmt.Sprintf("k%02d/%d", key, seq), []byte("x"))
			m.Metadata.Set(meta.Key, fmt.Sprintf("k%02d", key))
			m.Metadata.Set("seq", strconv.Itoa(seq))
			msgs = append(msgs, m)
		}
	}
	require.NoError(t, app.NewPublisher(cfg, k).PublishMessages(ctx, topic, msgs...))

	leaders := map[int32]bool{}
	topics, err := kadm.NewClient(kafkatest.Client(t, seed)).ListTopics(ctx, topic)
	require.NoError(t, err)
	for _, p := range topics[topic].Partitions {
		leaders[p.Leader] = true
	}
	require.Len(t, leaders, 3, "brokers leading the topic's partitions")

	for _, mode := range []string{config.ConsumePartition, config.ConsumeKey} {
		t.Run(mode, func(t *testing.T) {
			group := kafkatest.Unique("g")
			sub, err := k.Subscriber(router.SubscriberSpec{ConsumerGroup: group, Consume: mode})
			require.NoError(t, err)
			subCtx, stop := context.WithCancel(ctx)
			defer stop()
			ch, err := sub.Subscribe(subCtx, topic)
			require.NoError(t, err)

			got := map[string]int{}
			last := map[string]int{}
			for len(got) < len(msgs) {
				select {
				case m := <-ch:
					got[m.UUID]++
					key := m.Metadata.Get(meta.Key)
					seq, err := strconv.Atoi(m.Metadata.Get("seq"))
					require.NoError(t, err, "seq of %s", m.UUID)
					if prev, ok := last[key]; ok {
						assert.Greater(t, seq, prev, "key %s: order", key)
					}
					last[key] = seq
					m.Ack()
				case <-ctx.Done():
					t.Fatalf("%d of %d messages within the deadline", len(got), len(msgs))
				}
			}
			for id, n := range got {
				assert.Equal(t, 1, n, "deliveries of %s", id)
			}
			stop()
			require.NoError(t, sub.Close())
			kafkatest.Eventually(t, 10*time.Second, func() bool {
				return kafkatest.Committed(t, seed, group, topic) == int64(len(msgs))
			}, func() string {
				return fmt.Sprintf("committed %d of %d", kafkatest.Committed(t, seed, group, topic), len(msgs))
			})
		})
	}
}
