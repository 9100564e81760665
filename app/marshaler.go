package app

import (
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
)

// marshaler is eventfx's wire format (README, "Middleware order and guarantees"): the payload untouched, the
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
	// As messageOf: one allocation for the strings, header names included.
	var b strings.Builder
	n := len(km.Key)
	for _, h := range km.Headers {
		if h != nil {
			n += len(h.Key) + len(h.Value)
		}
	}
	b.Grow(n)
	b.Write(km.Key)
	for _, h := range km.Headers {
		if h != nil {
			b.Write(h.Key)
			b.Write(h.Value)
		}
	}
	all := b.String()
	key, rest := all[:len(km.Key)], all[len(km.Key):]
	headers := make([][2]string, 0, 8)
	id := ""
	for _, h := range km.Headers {
		if h == nil {
			continue
		}
		k, v := rest[:len(h.Key)], rest[len(h.Key):len(h.Key)+len(h.Value)]
		rest = rest[len(h.Key)+len(h.Value):]
		if k == kafka.UUIDHeaderKey {
			id = v
			continue
		}
		headers = append(headers, [2]string{k, v})
	}
	if id == "" {
		id = km.Topic + "-" + strconv.FormatInt(int64(km.Partition), 10) + "-" + strconv.FormatInt(km.Offset, 10)
	}
	msg := message.NewMessage(id, km.Value)
	for _, h := range headers {
		msg.Metadata[h[0]] = h[1]
	}
	if len(key) > 0 {
		msg.Metadata[meta.Key] = key
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
//
// The strings of the ID, the header values and the key are cut from one
// allocation (they live and die with the message): three allocations
// were a tenth of the CPU of consuming by key.
func messageOf(r *kgo.Record) *message.Message {
	var b strings.Builder
	n := len(r.Key)
	for _, h := range r.Headers {
		n += len(h.Value)
	}
	b.Grow(n)
	b.Write(r.Key)
	for _, h := range r.Headers {
		b.Write(h.Value)
	}
	all := b.String()
	key, rest := all[:len(r.Key)], all[len(r.Key):]
	values := make([]string, 0, 8)
	id := ""
	for _, h := range r.Headers {
		v := rest[:len(h.Value)]
		rest = rest[len(h.Value):]
		if h.Key == kafka.UUIDHeaderKey {
			id = v
		}
		values = append(values, v)
	}
	if id == "" {
		id = r.Topic + "-" + strconv.FormatInt(int64(r.Partition), 10) + "-" + strconv.FormatInt(r.Offset, 10)
	}
	msg := message.NewMessage(id, r.Value)
	for i, h := range r.Headers {
		if h.Key != kafka.UUIDHeaderKey {
			msg.Metadata[h.Key] = values[i]
		}
	}
	if len(key) > 0 {
		msg.Metadata[meta.Key] = key
	} else {
		delete(msg.Metadata, meta.Key)
	}
	return msg
}
