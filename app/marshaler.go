package app

import (
	"fmt"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
)

// marshaler is the wire format of design.md: the payload untouched, the
// message ID in _watermill_message_uuid, metadata as headers, and the
// partition key (metadata meta.Key) as the Kafka key — nil when there is
// none, so unkeyed messages spread over partitions.
type marshaler struct{}

var _ kafka.MarshalerUnmarshaler = marshaler{}

func (marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	headers := make([]sarama.RecordHeader, 0, len(msg.Metadata)+1)
	headers = append(headers, sarama.RecordHeader{Key: []byte(kafka.UUIDHeaderKey), Value: []byte(msg.UUID)})
	var key sarama.Encoder
	for k, v := range msg.Metadata {
		switch k {
		case meta.Key:
			if v != "" {
				key = sarama.StringEncoder(v)
			}
		case kafka.UUIDHeaderKey:
			// The ID travels in msg.UUID; a stray copy would be ambiguous.
		default:
			headers = append(headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
	}
	return &sarama.ProducerMessage{Topic: topic, Key: key, Value: sarama.ByteEncoder(msg.Payload), Headers: headers}, nil
}

// Unmarshal never fails, so a malformed record reaches the handler chain
// (and the poison queue) instead of stopping the consumer. A record without
// an ID header (another producer's) gets the stable ID
// "<topic>-<partition>-<offset>".
func (marshaler) Unmarshal(km *sarama.ConsumerMessage) (*message.Message, error) {
	var id string
	for _, h := range km.Headers {
		if h != nil && string(h.Key) == kafka.UUIDHeaderKey {
			id = string(h.Value)
		}
	}
	if id == "" {
		id = fmt.Sprintf("%s-%d-%d", km.Topic, km.Partition, km.Offset)
	}
	msg := message.NewMessage(id, km.Value)
	for _, h := range km.Headers {
		if h != nil && string(h.Key) != kafka.UUIDHeaderKey {
			msg.Metadata[string(h.Key)] = string(h.Value)
		}
	}
	if len(km.Key) > 0 {
		msg.Metadata[meta.Key] = string(km.Key)
	} else {
		delete(msg.Metadata, meta.Key)
	}
	return msg, nil
}

// record is msg as the Kafka record the producer writes to topic: the
// wire format of Marshal.
func record(topic string, msg *message.Message) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: msg.Payload, Headers: make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: kafka.UUIDHeaderKey, Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		switch k {
		case meta.Key:
			if v != "" {
				r.Key = []byte(v)
			}
		case kafka.UUIDHeaderKey:
		default:
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return r
}

// messageOf is the message of a consumed record, as Unmarshal makes it: it
// never fails, and a record without an ID header gets the ID
// "<topic>-<partition>-<offset>".
func messageOf(r *kgo.Record) *message.Message {
	var id string
	for _, h := range r.Headers {
		if h.Key == kafka.UUIDHeaderKey {
			id = string(h.Value)
		}
	}
	if id == "" {
		id = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	msg := message.NewMessage(id, r.Value)
	for _, h := range r.Headers {
		if h.Key != kafka.UUIDHeaderKey {
			msg.Metadata[h.Key] = string(h.Value)
		}
	}
	if len(r.Key) > 0 {
		msg.Metadata[meta.Key] = string(r.Key)
	} else {
		delete(msg.Metadata, meta.Key)
	}
	return msg
}
