package kafka

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
)

// Record is msg as the Kafka record eventfx's producer writes to topic (the
// wire format of codec.go), for a path that produces with a client of its
// own: the outbox relay's transactional producer.
func Record(topic string, msg *message.Message) *kgo.Record { return record(topic, msg) }

// PartitionerOf is how every eventfx producer places records for k
// (kafka.partitioner, kafka.partitioners), for a client that places some
// records itself.
func PartitionerOf(k config.Kafka) kgo.Partitioner { return partitioner(k) }
