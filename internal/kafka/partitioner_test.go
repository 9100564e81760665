package kafka

import (
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
)

// javaMurmur2 is org.apache.kafka.common.utils.Utils.murmur2, transcribed
// from Kafka's Java source: the hash Java's default partitioner (and
// Kafka Streams, kafka-python, KafkaJS) puts keys with.
func javaMurmur2(data []byte) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// javaPartition is Java's BuiltInPartitioner.partitionForKey.
func javaPartition(key []byte, n int) int32 {
	return (javaMurmur2(key) & 0x7fffffff) % int32(n)
}

// place is the partition eventfx's producers of k put key on, on a topic
// of n partitions.
func place(k config.Kafka, topic, key string, n int) int32 {
	tp := partitioner(k).ForTopic(topic)
	return int32(tp.Partition(&kgo.Record{Topic: topic, Key: []byte(key)}, n))
}

func keys() []string {
	ks := []string{"", "a", "ab", "abc", "abcd", "customer-7", "ünïcödé", "00000000-0000-0000-0000-000000000000"}
	for i := range 500 {
		ks = append(ks, fmt.Sprintf("order-%d", i), fmt.Sprintf("k%05d", i*7919))
	}
	return ks
}

func TestMurmur2PlacesKeysWhereJavaDoes(t *testing.T) {
	for _, n := range []int{1, 3, 8, 12, 100} {
		for _, key := range keys() {
			if key == "" {
				continue // unkeyed: sticky, not hashed
			}
			want := javaPartition([]byte(key), n)
			assert.Equal(t, want, place(config.Config{}.WithDefaults().Kafka, "t", key, n), "key %q, %d partitions", key, n)
			// franz-go's own Java-compatible partitioner agrees too.
			franz := kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: []byte(key)}, n)
			require.Equal(t, want, int32(franz), "franz-go, key %q", key)
		}
	}
	// Values of Kafka's own tests of Utils.murmur2 (UtilsTest.testMurmur2).
	for in, want := range map[string]int32{"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107} {
		assert.Equal(t, want, javaMurmur2([]byte(in)), "murmur2(%q)", in)
	}
}

func TestFNV1aPlacesKeysWhereSaramaDoes(t *testing.T) {
	k := config.Kafka{Partitioner: config.PartitionerFNV1a}
	for _, n := range []int{1, 3, 8, 12, 100} {
		for _, key := range keys() {
			if key == "" {
				continue
			}
			want, err := sarama.NewHashPartitioner("t").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, int32(n))
			require.NoError(t, err)
			assert.Equal(t, want, place(k, "t", key, n), "key %q, %d partitions", key, n)
		}
	}
}

func TestCRC32PlacesKeysAsLibrdkafkasConsistentPartitioner(t *testing.T) {
	k := config.Kafka{Partitioner: config.PartitionerCRC32}
	for _, n := range []int{1, 3, 8, 12, 100} {
		for _, key := range keys() {
			if key == "" {
				continue
			}
			// rd_kafka_msg_partitioner_consistent: rd_crc32(key) % partition_cnt.
			want := int32(crc32.ChecksumIEEE([]byte(key)) % uint32(n))
			assert.Equal(t, want, place(k, "t", key, n), "key %q, %d partitions", key, n)
		}
	}
}

func TestTopicPartitionersOverrideTheDefault(t *testing.T) {
	k := config.Kafka{Partitioner: config.PartitionerMurmur2, Partitioners: []config.TopicPartitioner{
		{Topic: "legacy.orders", Partitioner: config.PartitionerFNV1a},
	}}
	differ := 0
	for _, key := range keys()[1:] {
		fnv, err := sarama.NewHashPartitioner("t").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, 8)
		require.NoError(t, err)
		assert.Equal(t, fnv, place(k, "legacy.orders", key, 8), "legacy.orders: Sarama's placement of %q", key)
		assert.Equal(t, javaPartition([]byte(key), 8), place(k, "orders", key, 8), "other topics: Java's placement of %q", key)
		if fnv != javaPartition([]byte(key), 8) {
			differ++
		}
	}
	assert.Greater(t, differ, 100, "the two placements differ for most keys, so the test tells them apart")
}

// Every eventfx producer takes its options from connection.franz: the
// transport's producer, key mode, the CLI and poison tools (ClientOpts).
func TestEveryClientOfTheConfigUsesItsPartitioner(t *testing.T) {
	k := config.Kafka{Partitioner: config.PartitionerCRC32}
	c, err := connectionOf(k, "svc")
	require.NoError(t, err)
	for name, opts := range map[string][]kgo.Opt{
		"producer":   producerOpts(config.Config{Kafka: k}.WithDefaults(), c, []string{"127.0.0.1:1"}),
		"clientOpts": must(ClientOpts([]string{"127.0.0.1:1"}, k, "cli")),
	} {
		cl, err := kgo.NewClient(opts...)
		require.NoError(t, err, name)
		p, ok := cl.OptValue(kgo.RecordPartitioner).(kgo.Partitioner)
		require.True(t, ok, "%s: a partitioner", name)
		got := p.ForTopic("t").Partition(&kgo.Record{Key: []byte("customer-7")}, 12)
		assert.Equal(t, int(crc32.ChecksumIEEE([]byte("customer-7"))%12), got, name)
		cl.Close()
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
