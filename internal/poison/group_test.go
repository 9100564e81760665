package poison_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

func at(minute int) time.Time { return time.Date(2025, 6, 1, 12, minute, 0, 0, time.UTC) }

func TestGroupRecords(t *testing.T) {
	rec := func(offset int64, topic, handler, reason string, poisonedAt time.Time, replayed bool) poison.Record {
		return poison.Record{PoisonOffset: offset, Topic: topic, Handler: handler, Reason: reason, PoisonedAt: poisonedAt, AlreadyReplayed: replayed}
	}
	recs := []poison.Record{
		rec(0, "orders", "bill", "order 1234 failed: timeout after 30s", at(5), true),
		rec(1, "orders", "bill", "order 98 failed: out of stock", at(1), false),
		rec(2, "orders", "bill", "order 98 failed: timeout after 5s", at(2), false),
		rec(3, "orders", "ship", "order 7 failed: timeout after 5s", at(3), false),
		rec(4, "orders", "bill", "order 7 failed: timeout after 1m0s", at(4), false),
		{PoisonOffset: 5, Topic: "orders", Handler: "ship", Reason: "order 8 failed: timeout after 5s", Timestamp: at(9)}, // no eventfx_poisoned_at
	}

	groups := poison.GroupRecords(recs)

	timeout := "order <num> failed: timeout after <dur>"
	require.Len(t, groups, 3, "%+v", groups)
	assert.Equal(t, poison.Group{
		ID: poison.GroupID("orders", "bill", timeout), Topic: "orders", Handler: "bill", Fingerprint: timeout,
		Example: "order 1234 failed: timeout after 30s", Count: 3, AlreadyReplayed: 1, FirstSeen: at(2), LastSeen: at(5),
	}, groups[0], "the most numerous first; the example is the reason seen last")
	assert.Equal(t, poison.Group{
		ID: poison.GroupID("orders", "ship", timeout), Topic: "orders", Handler: "ship", Fingerprint: timeout,
		Example: "order 8 failed: timeout after 5s", Count: 2, FirstSeen: at(3), LastSeen: at(9),
	}, groups[1], "another handler, another group; the record time when eventfx_poisoned_at is missing")
	assert.Equal(t, "order <num> failed: out of stock", groups[2].Fingerprint, "another cause, another group")
	assert.Equal(t, 1, groups[2].Count)
	assert.Equal(t, []string{groups[0].ID, groups[2].ID, groups[0].ID, groups[1].ID, groups[0].ID, groups[1].ID},
		[]string{recs[0].GroupID(), recs[1].GroupID(), recs[2].GroupID(), recs[3].GroupID(), recs[4].GroupID(), recs[5].GroupID()},
		"Record.GroupID names the record's group")
}

func TestGroupRecordsOrdersTiesByLastSeenThenID(t *testing.T) {
	recs := []poison.Record{
		{Topic: "a", Handler: "h", Reason: "x", PoisonedAt: at(1)},
		{Topic: "b", Handler: "h", Reason: "x", PoisonedAt: at(2)},
		{Topic: "c", Handler: "h", Reason: "x"},
		{Topic: "d", Handler: "h", Reason: "x"},
	}

	groups := poison.GroupRecords(recs)

	require.Len(t, groups, 4)
	assert.Equal(t, "b", groups[0].Topic, "seen last")
	assert.Equal(t, "a", groups[1].Topic)
	assert.Less(t, groups[2].ID, groups[3].ID, "never seen: by ID")
	assert.True(t, groups[2].FirstSeen.IsZero() && groups[2].LastSeen.IsZero(), "unknown times stay zero")
	assert.Empty(t, poison.GroupRecords(nil))
}

func TestParseKeepsTheRecordTimestamp(t *testing.T) {
	p := poison.Parse(&kgo.Record{Topic: "p", Timestamp: at(7)})

	assert.Equal(t, at(7), p.Timestamp)
	assert.Equal(t, at(7), p.Seen(), "no eventfx_poisoned_at: the record time")
	p.PoisonedAt = at(3)
	assert.Equal(t, at(3), p.Seen(), "eventfx_poisoned_at first")
}

// groupFixture is a poison topic with three failures of handler bill on
// orders that differ only in the order ID (one group), and one of another
// cause (another group).
func groupFixture(t *testing.T) (addr, poisonTopic, orders string) {
	t.Helper()
	addr, poisonTopic, orders = kafkatest.Broker(t), kafkatest.Unique("poison"), kafkatest.Unique("orders")
	createTopic(t, addr, poisonTopic, nil)
	var recs []*kgo.Record
	for i, reason := range []string{
		"order 1234 failed: timeout after 30s",
		"order 98 failed: out of stock",
		"order 98 failed: timeout after 5s",
		"order 7 failed: timeout after 2s",
	} {
		r := poisonRecord(poisonTopic, fmt.Sprintf("id-%d", i+1), orders, "bill", "")
		for j, h := range r.Headers {
			switch h.Key {
			case meta.ReasonPoisoned:
				r.Headers[j].Value = []byte(reason)
			case meta.PoisonedAt:
				r.Headers[j].Value = []byte(at(i).Format(time.RFC3339))
			}
		}
		recs = append(recs, r)
	}
	kafkatest.Produce(t, addr, recs...)
	return addr, poisonTopic, orders
}

func TestStatsGroupsByFingerprint(t *testing.T) {
	t.Parallel()
	addr, poisonTopic, orders := groupFixture(t)
	c := dial(t, addr)

	groups, err := c.Stats(testContext(t), poisonTopic)

	require.NoError(t, err)
	require.Len(t, groups, 2, "%+v", groups)
	timeout := groups[0]
	assert.Equal(t, poison.GroupID(orders, "bill", "order <num> failed: timeout after <dur>"), timeout.ID)
	assert.Equal(t, 3, timeout.Count)
	assert.Equal(t, at(0), timeout.FirstSeen)
	assert.Equal(t, at(3), timeout.LastSeen)
	assert.Equal(t, "order 7 failed: timeout after 2s", timeout.Example)
	assert.Equal(t, "order <num> failed: out of stock", groups[1].Fingerprint)
	assert.Equal(t, 1, groups[1].Count)
}

func TestReplayOneGroupLeavesTheOthersForALaterRun(t *testing.T) {
	t.Parallel()
	addr, poisonTopic, orders := groupFixture(t)
	c := dial(t, addr)
	group := poison.GroupID(orders, "bill", "order <num> failed: timeout after <dur>")

	sum, results, err := replay(t, c, poison.ReplayOptions{Topic: poisonTopic, Group: group})

	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 3, Filtered: 1}, sum)
	assert.ElementsMatch(t, []string{"id-1", "id-3", "id-4"}, resultIDs(results), describe(results))
	groups, err := c.Stats(testContext(t), poisonTopic)
	require.NoError(t, err)
	assert.Equal(t, 3, groups[0].AlreadyReplayed, "Stats counts the replayed records of a group")

	sum, results, err = replay(t, c, poison.ReplayOptions{Topic: poisonTopic})

	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 1, AlreadyReplayed: 3}, sum)
	assert.Equal(t, []string{"id-2"}, resultIDs(results))
	assert.Equal(t, int64(4), kafkatest.Count(t, addr, orders), "each replayed once")
}

func TestReplayOptionsRejectABadGroup(t *testing.T) {
	err := poison.ReplayOptions{Topic: "p", Group: "nope"}.Validate()

	assert.ErrorContains(t, err, `Group: "nope" is not a group ID`)
	assert.NoError(t, poison.ReplayOptions{Topic: "p", Group: poison.GroupID("t", "h", "")}.Validate())
}
