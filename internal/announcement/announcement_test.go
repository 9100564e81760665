package announcement_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/announcement"
)

func TestRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	a := announcement.Announcement{
		Service: "shop", Instance: "h-1-abcd", Version: "v1.2.3", Host: "h", PID: 1, State: announcement.StateRunning,
		StartedAt: now, Heartbeat: now.Add(10 * time.Second), Interval: announcement.Duration(10 * time.Second),
		PoisonTopic: "eventfx.poison",
		Handlers:    []announcement.Handler{{Name: "bill", Topic: "orders", PublishTopic: "payments", ConsumerGroup: "shop.bill", Consume: "partition"}},
	}
	r := a.Record()
	assert.Equal(t, announcement.Topic, r.Topic)
	assert.Equal(t, "shop/h-1-abcd", string(r.Key))
	assert.Contains(t, string(r.Value), `"interval":"10s"`)
	got, err := announcement.Parse(r)
	require.NoError(t, err)
	assert.Equal(t, a, got)
}

func TestParseRefusesWhatIsNotAnAnnouncement(t *testing.T) {
	tests := []struct {
		name  string
		value []byte
		want  string
	}{
		{"a tombstone", nil, "tombstone"},
		{"not JSON", []byte("hello"), "invalid character"},
		{"no instance", []byte(`{"service":"shop"}`), "no service or instance"},
		{"a bad interval", []byte(`{"service":"s","instance":"i","interval":"often"}`), "invalid duration"},
	}
	for _, tt := range tests {
		_, err := announcement.Parse(&kgo.Record{Key: []byte("k"), Value: tt.value})
		require.Error(t, err, tt.name)
		assert.Contains(t, err.Error(), tt.want, tt.name)
	}
}
