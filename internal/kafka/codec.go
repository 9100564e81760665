package kafka

import (
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
)

// The wire format, both ways: a message's payload is the record's value,
// untouched; its ID travels in the _watermill_message_uuid header; its
// metadata are the other headers; its partition key (metadata meta.Key) is
// the record's key — nil when there is none, so unkeyed messages spread
// over partitions. Reading never fails, so a malformed record reaches the
// handler chain (and the poison queue) instead of stopping the consumer;
// a record without an ID header (another producer's) gets the stable ID
// "<topic>-<partition>-<offset>".
//
// record writes (the producer); messageOf and saramaMessage read, from
// franz-go's and from Sarama's records: both lay the record out for
// decode, which makes the message.

// idHeader is the header of the message ID, as watermill-kafka names it.
const idHeader = wmkafka.UUIDHeaderKey

// record is msg as the Kafka record the producer writes to topic.
func record(topic string, msg *message.Message) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: msg.Payload, Headers: make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: idHeader, Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		switch k {
		case meta.Key:
			if v != "" {
				r.Key = []byte(v)
			}
		case idHeader:
			// The ID travels in msg.UUID; a stray copy would be ambiguous.
		default:
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return r
}

// messageOf is the message of a record read with franz-go (key mode).
func messageOf(r *kgo.Record) *message.Message {
	var b strings.Builder
	n := len(r.Key)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	b.Grow(n)
	b.Write(r.Key)
	sizes := make([][2]int, 0, 8)
	for _, h := range r.Headers {
		b.WriteString(h.Key)
		b.Write(h.Value)
		sizes = append(sizes, [2]int{len(h.Key), len(h.Value)})
	}
	return decode(r.Topic, r.Partition, r.Offset, r.Value, b.String(), len(r.Key), sizes)
}

// saramaMessage is the message of a record read with Sarama (partition
// mode, watermill-kafka).
func saramaMessage(km *sarama.ConsumerMessage) *message.Message {
	var b strings.Builder
	n := len(km.Key)
	for _, h := range km.Headers {
		if h != nil {
			n += len(h.Key) + len(h.Value)
		}
	}
	b.Grow(n)
	b.Write(km.Key)
	sizes := make([][2]int, 0, 8)
	for _, h := range km.Headers {
		if h != nil {
			b.Write(h.Key)
			b.Write(h.Value)
			sizes = append(sizes, [2]int{len(h.Key), len(h.Value)})
		}
	}
	return decode(km.Topic, km.Partition, km.Offset, km.Value, b.String(), len(km.Key), sizes)
}

// decode makes the message of a record of topic, partition and offset
// whose value is value: all holds its key (the first keyLen bytes), then
// the name and value of each header, of the lengths in sizes.
//
// The strings of the ID, the header names and values and the key are cut
// from that one allocation (they live and die with the message): an
// allocation per string was a tenth of the CPU of consuming by key.
func decode(topic string, partition int32, offset int64, value []byte, all string, keyLen int, sizes [][2]int) *message.Message {
	key, rest := all[:keyLen], all[keyLen:]
	id := ""
	msg := message.NewMessage("", value)
	for _, sz := range sizes {
		k, v := rest[:sz[0]], rest[sz[0]:sz[0]+sz[1]]
		rest = rest[sz[0]+sz[1]:]
		if k == idHeader {
			id = v
			continue
		}
		msg.Metadata[k] = v
	}
	if id == "" {
		id = topic + "-" + strconv.FormatInt(int64(partition), 10) + "-" + strconv.FormatInt(offset, 10)
	}
	msg.UUID = id
	if key != "" {
		msg.Metadata[meta.Key] = key
	} else {
		delete(msg.Metadata, meta.Key)
	}
	return msg
}
