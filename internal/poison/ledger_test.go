package poison_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/poison"
)

func TestLedgerTopic(t *testing.T) {
	assert.Equal(t, "eventfx.poison.replayed", poison.LedgerTopic("eventfx.poison"))
}

func TestEntryRoundTrip(t *testing.T) {
	p := poison.Parse(poisoned())
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e := poison.NewEntry(p, &kgo.Record{Topic: "orders", Partition: 5, Offset: 77}, at)
	rec := e.Record("eventfx.poison.replayed")
	assert.Equal(t, "eventfx.poison.replayed", rec.Topic)
	assert.Equal(t, "3/41", string(rec.Key))
	got, err := poison.ParseEntry(rec)
	require.NoError(t, err)
	assert.Equal(t, poison.Entry{PoisonPartition: 3, PoisonOffset: 41, ID: "msg-1", Topic: "orders", Partition: 5, Offset: 77, ReplayedAt: at}, got)
}

func TestParseEntry(t *testing.T) {
	tests := []struct {
		name, key, value string
		want             poison.Entry
	}{
		{name: "key and value", key: "1/2", value: `{"id":"m","topic":"t"}`, want: poison.Entry{PoisonPartition: 1, PoisonOffset: 2, ID: "m", Topic: "t"}},
		{name: "the key wins over the value", key: "1/2", value: `{"poison_partition":9,"poison_offset":9}`, want: poison.Entry{PoisonPartition: 1, PoisonOffset: 2}},
		{name: "a value that is not JSON still counts", key: "0/0", value: "garbage", want: poison.Entry{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := poison.ParseEntry(&kgo.Record{Key: []byte(tt.key), Value: []byte(tt.value)})
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseEntryRejectsBadKeys(t *testing.T) {
	for _, key := range []string{"12", "a/b", "-1/3", "1/-3", "4294967296/3", "", "/", "1/2/3"} {
		t.Run(key, func(t *testing.T) {
			_, err := poison.ParseEntry(&kgo.Record{Key: []byte(key), Value: []byte(`{}`)})
			assert.ErrorContains(t, err, "is not <partition>/<offset>")
		})
	}
}

func TestLedgerHas(t *testing.T) {
	l := poison.NewLedger()
	l.Add(poison.Entry{PoisonPartition: 0, PoisonOffset: 5, ID: "m5"})
	l.Add(poison.Entry{PoisonPartition: 1, PoisonOffset: 5}) // value was unreadable: no ID
	tests := []struct {
		name string
		rec  poison.Record
		want bool
	}{
		{"same position and ID", poison.Record{PoisonPartition: 0, PoisonOffset: 5, ID: "m5"}, true},
		{"same position, no ID on the record", poison.Record{PoisonPartition: 0, PoisonOffset: 5}, true},
		{"same position, no ID in the entry", poison.Record{PoisonPartition: 1, PoisonOffset: 5, ID: "x"}, true},
		{"same position, another ID (topic recreated)", poison.Record{PoisonPartition: 0, PoisonOffset: 5, ID: "other"}, false},
		{"another offset", poison.Record{PoisonPartition: 0, PoisonOffset: 6, ID: "m5"}, false},
		{"another partition", poison.Record{PoisonPartition: 2, PoisonOffset: 5, ID: "m5"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, l.Has(tt.rec))
		})
	}
	assert.Equal(t, 2, l.Len())
}
