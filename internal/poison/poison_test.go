package poison_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

func hdrs(kv ...string) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

// poisoned is a record as router.Poison writes it.
func poisoned() *kgo.Record {
	return &kgo.Record{
		Topic: "eventfx.poison", Partition: 3, Offset: 41,
		Key: []byte("customer-7"), Value: []byte(`{"order":1}`),
		Headers: hdrs(
			poison.IDHeader, "msg-1",
			meta.CorrelationID, "corr-1",
			"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			meta.ContentType, "application/json",
			meta.ReasonPoisoned, "decode: unexpected EOF",
			meta.TopicPoisoned, "orders",
			meta.HandlerPoisoned, "bill",
			meta.SubscriberPoisoned, "billing.bill",
			meta.Attempts, "6",
			meta.PoisonedAt, "2025-03-04T05:06:07.123456789Z",
			meta.ConsumerGroup, "billing.bill",
			meta.OriginalPartition, "2",
			meta.OriginalOffset, "1234",
		),
	}
}

func TestIDHeaderIsWatermillKafkas(t *testing.T) {
	assert.Equal(t, kafka.UUIDHeaderKey, poison.IDHeader)
}

func TestParse(t *testing.T) {
	full := poisoned()
	tests := []struct {
		name string
		rec  *kgo.Record
		want poison.Record
	}{
		{
			name: "as the router writes it",
			rec:  full,
			want: poison.Record{
				PoisonTopic: "eventfx.poison", PoisonPartition: 3, PoisonOffset: 41,
				ID: "msg-1", Topic: "orders", Handler: "bill", Subscriber: "billing.bill",
				Reason: "decode: unexpected EOF", Attempts: 6,
				PoisonedAt:    time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC),
				CorrelationID: "corr-1", Key: []byte("customer-7"), Partition: 2, Offset: 1234,
				ConsumerGroup: "billing.bill", Service: "billing", Payload: []byte(`{"order":1}`), Headers: full.Headers,
			},
		},
		{
			name: "the service header wins over the consumer group's prefix",
			rec:  &kgo.Record{Topic: "p", Headers: hdrs(meta.HandlerPoisoned, "bill", meta.ConsumerGroup, "team.bill", meta.Service, "billing")},
			want: poison.Record{PoisonTopic: "p", Handler: "bill", ConsumerGroup: "team.bill", Service: "billing",
				Partition: poison.Unknown, Offset: poison.Unknown,
				Headers: hdrs(meta.HandlerPoisoned, "bill", meta.ConsumerGroup, "team.bill", meta.Service, "billing")},
		},
		{
			name: "a consumer group not ending in the handler names no service",
			rec:  &kgo.Record{Topic: "p", Headers: hdrs(meta.HandlerPoisoned, "bill", meta.ConsumerGroup, "billing-v1")},
			want: poison.Record{PoisonTopic: "p", Handler: "bill", ConsumerGroup: "billing-v1",
				Partition: poison.Unknown, Offset: poison.Unknown,
				Headers: hdrs(meta.HandlerPoisoned, "bill", meta.ConsumerGroup, "billing-v1")},
		},
		{
			name: "no headers",
			rec:  &kgo.Record{Topic: "p", Partition: 0, Offset: 7, Value: []byte("x")},
			want: poison.Record{PoisonTopic: "p", PoisonOffset: 7, Partition: poison.Unknown, Offset: poison.Unknown, Payload: []byte("x")},
		},
		{
			name: "empty key is no key",
			rec:  &kgo.Record{Topic: "p", Key: []byte{}},
			want: poison.Record{PoisonTopic: "p", Partition: poison.Unknown, Offset: poison.Unknown},
		},
		{
			name: "a replayed message poisoned again",
			rec:  &kgo.Record{Topic: "p", Headers: hdrs(poison.IDHeader, "m", meta.TopicPoisoned, "t", meta.Replayed, "2")},
			want: poison.Record{PoisonTopic: "p", ID: "m", Topic: "t", Replayed: 2, Partition: poison.Unknown, Offset: poison.Unknown,
				Headers: hdrs(poison.IDHeader, "m", meta.TopicPoisoned, "t", meta.Replayed, "2")},
		},
		{
			name: "no ID header: the stable ID of other producers' messages",
			rec:  &kgo.Record{Topic: "p", Headers: hdrs(meta.TopicPoisoned, "orders", meta.OriginalPartition, "1", meta.OriginalOffset, "9")},
			want: poison.Record{PoisonTopic: "p", ID: "orders-1-9", Topic: "orders", Partition: 1, Offset: 9,
				Headers: hdrs(meta.TopicPoisoned, "orders", meta.OriginalPartition, "1", meta.OriginalOffset, "9")},
		},
		{
			name: "bad values are problems, not failures",
			rec: &kgo.Record{Topic: "p", Headers: hdrs(meta.Attempts, "many", meta.PoisonedAt, "yesterday",
				meta.OriginalPartition, "-1", meta.OriginalOffset, "99999999999999999999", meta.Replayed, "x")},
			want: poison.Record{PoisonTopic: "p", Partition: poison.Unknown, Offset: poison.Unknown,
				Headers: hdrs(meta.Attempts, "many", meta.PoisonedAt, "yesterday",
					meta.OriginalPartition, "-1", meta.OriginalOffset, "99999999999999999999", meta.Replayed, "x"),
				Problems: []string{
					`eventfx_attempts: not a non-negative integer: "many"`,
					`eventfx_poisoned_at: not an RFC 3339 time: "yesterday"`,
					`eventfx_original_partition: not a non-negative integer: "-1"`,
					`eventfx_original_offset: not a non-negative integer: "99999999999999999999"`,
					`eventfx_replayed: not a non-negative integer: "x"`,
				}},
		},
		{
			name: "duplicate headers: the last wins",
			rec:  &kgo.Record{Topic: "p", Headers: hdrs(meta.HandlerPoisoned, "a", meta.HandlerPoisoned, "b")},
			want: poison.Record{PoisonTopic: "p", Handler: "b", Partition: poison.Unknown, Offset: poison.Unknown,
				Headers: hdrs(meta.HandlerPoisoned, "a", meta.HandlerPoisoned, "b")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, poison.Parse(tt.rec))
		})
	}
}

func TestReplayRecord(t *testing.T) {
	tests := []struct {
		name        string
		rec         *kgo.Record
		wantKey     []byte
		wantHeaders []kgo.RecordHeader
	}{
		{
			name:    "poison headers removed, everything else kept in order, first replay",
			rec:     poisoned(),
			wantKey: []byte("customer-7"),
			wantHeaders: hdrs(
				poison.IDHeader, "msg-1",
				meta.CorrelationID, "corr-1",
				"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				meta.ContentType, "application/json",
				meta.Replayed, "1",
				meta.ReplayFor, "billing.bill",
			),
		},
		{
			name: "replayed again: the count goes up, one header",
			rec: &kgo.Record{Topic: "p", Value: []byte("v"), Headers: hdrs(
				poison.IDHeader, "m", meta.Replayed, "2", meta.TopicPoisoned, "orders", "x", "y")},
			wantHeaders: hdrs(poison.IDHeader, "m", "x", "y", meta.Replayed, "3"),
		},
		{
			name: "for the consumer group that poisoned it, one header; no service header",
			rec: &kgo.Record{Topic: "p", Headers: hdrs(poison.IDHeader, "m", meta.ReplayFor, "old.bill",
				meta.TopicPoisoned, "orders", meta.ConsumerGroup, "billing.bill", meta.Service, "billing")},
			wantHeaders: hdrs(poison.IDHeader, "m", meta.Replayed, "1", meta.ReplayFor, "billing.bill"),
		},
		{
			name: "no ID header: the derived ID is written",
			rec: &kgo.Record{Topic: "p", Headers: hdrs(
				meta.TopicPoisoned, "orders", meta.OriginalPartition, "4", meta.OriginalOffset, "5")},
			wantHeaders: hdrs(poison.IDHeader, "orders-4-5", meta.Replayed, "1"),
		},
		{
			name:        "no ID and no origin: no ID header",
			rec:         &kgo.Record{Topic: "p", Headers: hdrs(meta.TopicPoisoned, "orders", "a", "b")},
			wantHeaders: hdrs("a", "b", meta.Replayed, "1"),
		},
		{
			name: "two ID headers: one, the last",
			rec: &kgo.Record{Topic: "p", Headers: hdrs(
				poison.IDHeader, "first", meta.TopicPoisoned, "orders", poison.IDHeader, "second")},
			wantHeaders: hdrs(poison.IDHeader, "second", meta.Replayed, "1"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := poison.Parse(tt.rec)
			got, err := p.ReplayRecord()
			require.NoError(t, err)
			assert.Equal(t, p.Topic, got.Topic)
			assert.Equal(t, tt.wantKey, got.Key)
			assert.Equal(t, tt.rec.Value, got.Value)
			assert.Equal(t, tt.wantHeaders, got.Headers)
		})
	}
}

func TestReplayRecordDoesNotChangeThePoisonRecord(t *testing.T) {
	rec := poisoned()
	before := len(rec.Headers)
	p := poison.Parse(rec)
	_, err := p.ReplayRecord()
	require.NoError(t, err)
	assert.Len(t, rec.Headers, before)
	assert.Equal(t, "msg-1", string(rec.Headers[0].Value))
}

func TestNotReplayable(t *testing.T) {
	tests := []struct {
		name string
		rec  *kgo.Record
		want string
	}{
		{"no original topic", &kgo.Record{Topic: "p"}, "no topic_poisoned header"},
		{"the poison topic itself", &kgo.Record{Topic: "p", Headers: hdrs(meta.TopicPoisoned, "p")}, "is the poison topic"},
		{"an invalid topic name", &kgo.Record{Topic: "p", Headers: hdrs(meta.TopicPoisoned, "a b")}, "original topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := poison.Parse(tt.rec).ReplayRecord()
			require.ErrorIs(t, err, poison.ErrNotReplayable)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
