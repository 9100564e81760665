package app_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

// Keyed is an event with a partition key.
type Keyed struct {
	K string `json:"k"`
}

func (e Keyed) EventKey() string { return e.K }

// placements are the partition each partitioner picks for a key, by
// implementations other than eventfx's: franz-go's Java-compatible
// murmur2, Sarama's hash partitioner, librdkafka's consistent CRC-32.
var placements = map[string]func(key string, n int) int32{
	config.PartitionerMurmur2: func(key string, n int) int32 {
		return int32(kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: []byte(key)}, n))
	},
	config.PartitionerFNV1a: func(key string, n int) int32 {
		p, _ := sarama.NewHashPartitioner("t").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, int32(n))
		return p
	},
	config.PartitionerCRC32: func(key string, n int) int32 {
		return int32(crc32.ChecksumIEEE([]byte(key)) % uint32(n))
	},
}

// The Publisher, the events a handler emits and the poison records all
// put a key where the configured partitioner does (the embedded broker's
// topics have 4 partitions).
func TestEveryProducerPlacesKeysByTheConfiguredPartitioner(t *testing.T) {
	addr := kafkatest.Broker(t)
	for name, want := range placements {
		t.Run(name, func(t *testing.T) {
			cfg := kafkatest.Config(addr)
			cfg.Kafka.Partitioner = name
			cfg.Retry.MaxRetries = config.NoRetries
			in, out := kafkatest.Unique("in"), kafkatest.Unique("out")
			echo := handlers.NewEmitting("echo", in, out, func(_ context.Context, e Keyed) ([]Keyed, error) {
				return []Keyed{e}, nil
			})
			refuse := handlers.New("refuse", in, func(context.Context, Keyed) error {
				return handlers.Permanent(fmt.Errorf("refused"))
			})
			var pub *app.Publisher
			a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, app.SubscriberModule,
				handlers.Register(echo, refuse), fx.Populate(&pub))
			a.RequireStart()
			defer a.RequireStop()

			const n = 40
			msgs := make([]*message.Message, n)
			for i := range msgs {
				key := fmt.Sprintf("customer-%d", i)
				msgs[i] = message.NewMessage(key, fmt.Appendf(nil, `{"k":%q}`, key))
				msgs[i].Metadata.Set("_eventfx_key", key)
			}
			require.NoError(t, pub.PublishMessages(context.Background(), in, msgs...))

			for _, topic := range []string{in, out, cfg.Poison.Topic} {
				for _, r := range kafkatest.Read(t, addr, topic, n, 30*time.Second) {
					assert.Equal(t, want(string(r.Key), 4), r.Partition, "%s: partition of key %s", topic, r.Key)
				}
			}
		})
	}
}
