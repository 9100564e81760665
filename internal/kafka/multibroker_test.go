package kafka_test

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

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/transport"
)

// TestThreeBrokers runs the transport against a cluster of three brokers
// leading the partitions between them, as a real cluster does, where the
// embedded broker is one. Given one of them as the seed, in both
// consumption modes: the publisher's batch reaches every partition's
// leader; then, half-way, every partition and the consumer groups move to
// another broker, and the publisher and the subscriber follow them. Every
// message arrives once, each key's in order, and the commits reach the end
// of every partition.
func TestThreeBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(),
		kfake.GroupMinSessionTimeout(100*time.Millisecond)) // kafkatest.Config uses 2 s
	require.NoError(t, err)
	t.Cleanup(c.Close)
	seed := c.ListenAddrs()[0]
	cfg := kafkatest.Config(seed)
	k, err := kafka.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, k.Start(ctx))
	t.Cleanup(func() { _ = k.Close() })
	pub := k.Publisher()
	adm := kadm.NewClient(kafkatest.Client(t, seed))

	const keys, perKey, partitions = 40, 30, 8
	for _, mode := range []string{config.ConsumePartition, config.ConsumeKey} {
		t.Run(mode, func(t *testing.T) {
			topic := kafkatest.Unique("three")
			require.NoError(t, c.CreateTopic(topic, partitions, nil))
			// lead moves partition p to broker (p+shift) mod 3.
			lead := func(shift int32) {
				for p := range int32(partitions) {
					require.NoError(t, c.MoveTopicPartition(topic, p, (p+shift)%3))
				}
			}
			lead(0)
			topics, err := adm.ListTopics(ctx, topic)
			require.NoError(t, err)
			leaders := map[int32]bool{}
			for _, p := range topics[topic].Partitions {
				leaders[p.Leader] = true
			}
			require.Len(t, leaders, 3, "brokers leading the topic's partitions")

			// publish sends every key's messages from..to-1, in order.
			publish := func(from, to int) {
				var msgs []*message.Message
				for seq := from; seq < to; seq++ {
					for key := range keys {
						m := message.NewMessage(fmt.Sprintf("k%02d/%d", key, seq), []byte("x"))
						m.Metadata.Set(meta.Key, fmt.Sprintf("k%02d", key))
						m.Metadata.Set("seq", strconv.Itoa(seq))
						msgs = append(msgs, m)
					}
				}
				require.NoError(t, pub.Publish(topic, msgs...))
			}

			group := kafkatest.Unique("g")
			sub, err := k.Subscriber(transport.Spec{ConsumerGroup: group, Consume: mode})
			require.NoError(t, err)
			subCtx, stop := context.WithCancel(ctx)
			defer stop()
			ch, err := sub.Subscribe(subCtx, topic)
			require.NoError(t, err)
			got := map[string]int{}
			last := map[string]int{}
			// receive takes messages until n distinct ones arrived.
			receive := func(n int) {
				for len(got) < n {
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
						t.Fatalf("%d of %d messages within the deadline", len(got), n)
					}
				}
			}

			publish(0, perKey/2)
			receive(keys * perKey / 2)
			lead(1)
			c.RehashCoordinators()
			publish(perKey/2, perKey)
			receive(keys * perKey)

			for id, n := range got {
				assert.Equal(t, 1, n, "deliveries of %s", id)
			}
			// As the router stops a subscriber: drain, then close.
			require.NoError(t, sub.Drain(ctx), "drain")
			stop()
			require.NoError(t, sub.Close())
			kafkatest.Eventually(t, 10*time.Second, func() bool {
				return kafkatest.Committed(t, seed, group, topic) == keys*perKey
			}, func() string {
				return fmt.Sprintf("committed %d of %d", kafkatest.Committed(t, seed, group, topic), keys*perKey)
			})
		})
	}
}
