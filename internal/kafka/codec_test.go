package kafka

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMessageOfARecord(t *testing.T) {
	r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("k1"), Value: []byte("payload"),
		Headers: []kgo.RecordHeader{
			{Key: "correlation_id", Value: []byte("c1")},
			{Key: "_watermill_message_uuid", Value: []byte("m1")},
			{Key: "empty", Value: nil},
			{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		}}
	msg := messageOf(r)
	assert.Equal(t, "m1", msg.UUID)
	assert.Equal(t, "payload", string(msg.Payload))
	assert.Equal(t, map[string]string{
		"correlation_id": "c1",
		"empty":          "",
		"traceparent":    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"_eventfx_key":   "k1",
	}, map[string]string(msg.Metadata))

	// A record from another producer: no ID header, no key, no headers.
	bare := messageOf(&kgo.Record{Topic: "orders", Partition: 3, Offset: 42, Value: []byte("x")})
	assert.Equal(t, "orders-3-42", bare.UUID)
	assert.Empty(t, bare.Metadata)

	// A record whose headers carry the key's metadata name does not pass
	// it off as the key.
	spoofed := messageOf(&kgo.Record{Topic: "t", Headers: []kgo.RecordHeader{{Key: "_eventfx_key", Value: []byte("forged")}}})
	assert.Empty(t, spoofed.Metadata.Get("_eventfx_key"))
}

func TestMessageOfASaramaRecord(t *testing.T) {
	km := &sarama.ConsumerMessage{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("k1"), Value: []byte("payload"),
		Headers: []*sarama.RecordHeader{
			{Key: []byte("correlation_id"), Value: []byte("c1")},
			nil,
			{Key: []byte("_watermill_message_uuid"), Value: []byte("m1")},
			{Key: []byte("empty")},
		}}
	msg := saramaMessage(km)
	assert.Equal(t, "m1", msg.UUID)
	assert.Equal(t, "payload", string(msg.Payload))
	assert.Equal(t, map[string]string{"correlation_id": "c1", "empty": "", "_eventfx_key": "k1"}, map[string]string(msg.Metadata))

	bare := saramaMessage(&sarama.ConsumerMessage{Topic: "orders", Partition: 3, Offset: 42})
	assert.Equal(t, "orders-3-42", bare.UUID)
	assert.Empty(t, bare.Metadata)

	spoofed := saramaMessage(&sarama.ConsumerMessage{Headers: []*sarama.RecordHeader{{Key: []byte("_eventfx_key"), Value: []byte("forged")}}})
	assert.Empty(t, spoofed.Metadata.Get("_eventfx_key"))
}
