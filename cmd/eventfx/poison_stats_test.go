package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

// groupsFixture is a fresh poison topic (one partition, in order) with
// failures of handler bill on orders: three that differ only in the order
// ID and the timeout (one group), one with another cause, and one with the
// same cause but of handler ship (each another group).
type groupsFixture struct {
	addr, poisonTopic, orders string
	recs                      []poisonRecord
	// timeout is the group of the three timeouts of bill; stock and
	// ship the others.
	timeout, stock, ship string
}

const timeoutClass = "order <num> failed: timeout after <dur>"

func newGroupsFixture(t *testing.T) groupsFixture {
	t.Helper()
	f := groupsFixture{addr: broker(t), poisonTopic: kafkatest.Unique("poison"), orders: kafkatest.Unique("orders")}
	f.timeout = poison.GroupID(f.orders, "bill", timeoutClass)
	f.stock = poison.GroupID(f.orders, "bill", "order <num> failed: out of stock")
	f.ship = poison.GroupID(f.orders, "ship", timeoutClass)
	f.recs = []poisonRecord{
		{id: "id-1", handler: "bill", reason: "order 1234 failed: timeout after 30s", poisonedAt: "2025-06-01T12:01:00Z"},
		{id: "id-2", handler: "bill", reason: "order 98 failed: out of stock", poisonedAt: "2025-06-01T12:02:00Z"},
		{id: "id-3", handler: "bill", reason: "order 98 failed: timeout after 5s", poisonedAt: "2025-06-01T12:03:00Z"},
		{id: "id-4", handler: "ship", reason: "order 98 failed: timeout after 5s", poisonedAt: "2025-06-01T12:04:00Z"},
		{id: "id-5", handler: "bill", reason: "order 7 failed: timeout after 1m30s", poisonedAt: "2025-06-01T12:05:00.25Z"},
	}
	var recs []*kgo.Record
	for i := range f.recs {
		f.recs[i].topic, f.recs[i].correlationID, f.recs[i].payload, f.recs[i].attempts = f.orders, "corr-"+f.recs[i].id, "{}", "6"
		rec := f.recs[i].record(f.poisonTopic)
		rec.Partition = 0
		recs = append(recs, rec)
	}
	produceTo(t, f.addr, recs...)
	return f
}

func (f groupsFixture) eventfx(t *testing.T, args ...string) result {
	t.Helper()
	return ok(t, nil, append(append([]string(nil), args...), "--brokers", f.addr, "--topic", f.poisonTopic)...)
}

// statsJSON runs `poison stats --json` and decodes its one JSON array.
func (f groupsFixture) statsJSON(t *testing.T) []map[string]any {
	t.Helper()
	r := f.eventfx(t, "poison", "stats", "--json")
	require.Len(t, lines(r.stdout), 1, "one line: a JSON array\n%s", r)
	var groups []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &groups), "not a JSON array of objects\n%s", r)
	return groups
}

var spaces = regexp.MustCompile(`\s{2,}`)

func TestPoisonStatsGroupsFailuresOfTheSameCause(t *testing.T) {
	t.Parallel()
	f := newGroupsFixture(t)

	r := f.eventfx(t, "poison", "stats")

	out := lines(r.stdout)
	require.Len(t, out, 4, "a header and three groups\n%s", r)
	cells := func(l string) []string { return spaces.Split(strings.TrimSpace(l), -1) }
	assert.Equal(t, []string{"GROUP", "COUNT", "REPLAYED", "FIRST SEEN", "LAST SEEN", "SERVICE", "TOPIC", "HANDLER", "REASON"}, cells(out[0]))
	assert.Equal(t, []string{f.timeout, "3", "0", "2025-06-01T12:01:00Z", "2025-06-01T12:05:00.25Z", "svc", f.orders, "bill", timeoutClass}, cells(out[1]),
		"three failures with different order IDs, one cause: one group, the most numerous first")
	assert.Equal(t, []string{f.ship, "1", "0", "2025-06-01T12:04:00Z", "2025-06-01T12:04:00Z", "svc", f.orders, "ship", timeoutClass}, cells(out[2]),
		"the same cause in another handler: another group (seen last of the groups of one)")
	assert.Equal(t, []string{f.stock, "1", "0", "2025-06-01T12:02:00Z", "2025-06-01T12:02:00Z", "svc", f.orders, "bill", "order <num> failed: out of stock"}, cells(out[3]),
		"another cause: another group")
	assert.Equal(t, "eventfx: 5 poisoned messages in 3 groups on "+f.poisonTopic+", 0 of them replayed", strings.TrimSpace(r.stderr))
}

func TestPoisonStatsJSON(t *testing.T) {
	t.Parallel()
	f := newGroupsFixture(t)

	groups := f.statsJSON(t)

	require.Len(t, groups, 3)
	for _, g := range groups {
		assert.ElementsMatch(t, []string{"group", "service", "topic", "handler", "reason", "example", "count", "replayed", "first_seen", "last_seen"}, keysOf(g))
	}
	assert.Equal(t, map[string]any{
		"group": f.timeout, "service": "svc", "topic": f.orders, "handler": "bill",
		"reason": timeoutClass, "example": "order 7 failed: timeout after 1m30s",
		"count": float64(3), "replayed": float64(0),
		"first_seen": "2025-06-01T12:01:00Z", "last_seen": "2025-06-01T12:05:00.25Z",
	}, groups[0])
	assert.Equal(t, []any{f.timeout, f.ship, f.stock}, []any{groups[0]["group"], groups[1]["group"], groups[2]["group"]})
	for _, g := range groups {
		_, err := time.Parse(time.RFC3339, g["last_seen"].(string))
		assert.NoError(t, err, "last_seen is RFC 3339")
	}
}

func TestPoisonReplayGroupReplaysOnlyThatGroup(t *testing.T) {
	t.Parallel()
	f := newGroupsFixture(t)

	dry := f.eventfx(t, "poison", "replay", "--group", f.timeout, "--dry-run")
	assert.Equal(t, "would replay 3, skipped 2 (already replayed 0, filtered 2), failed 0 (dry run: nothing written)", last(dry.stdout), "%s", dry)

	r := f.eventfx(t, "poison", "replay", "--group", f.timeout)

	assert.Equal(t, "replayed 3, skipped 2 (already replayed 0, filtered 2), failed 0", last(r.stdout), "%s", r)
	replayed := kafkatest.Read(t, f.addr, f.orders, 3, 10*time.Second)
	var ids []string
	for _, rec := range replayed {
		ids = append(ids, kafkatest.Headers(rec)[poison.IDHeader])
	}
	assert.ElementsMatch(t, []string{"id-1", "id-3", "id-5"}, ids, "only the timeouts of bill")
	groups := f.statsJSON(t)
	assert.Equal(t, []any{float64(3), float64(0), float64(0)}, []any{groups[0]["replayed"], groups[1]["replayed"], groups[2]["replayed"]},
		"stats counts the replayed messages of each group")

	again := f.eventfx(t, "poison", "replay", "--group", f.timeout)
	assert.Equal(t, "replayed 0, skipped 5 (already replayed 3, filtered 2), failed 0", last(again.stdout), "%s", again)

	rest := f.eventfx(t, "poison", "replay")
	assert.Equal(t, "replayed 2, skipped 3 (already replayed 3, filtered 0), failed 0", last(rest.stdout), "the other groups were left for a later run\n%s", rest)
	assert.Contains(t, rest.stdout, "id=id-2 ")
	assert.Contains(t, rest.stdout, "id=id-4 ")
	assert.Equal(t, int64(5), kafkatest.Count(t, f.addr, f.orders), "each message replayed once")
}

func TestPoisonReplayGroupAndHandlerMustBothMatch(t *testing.T) {
	t.Parallel()
	f := newGroupsFixture(t)

	r := f.eventfx(t, "poison", "replay", "--group", f.timeout, "--handler", "ship", "--json")

	objs := jsonLines(t, r.stdout)
	require.Len(t, objs, 1, "%s", r)
	assert.EqualValues(t, 0, objs[0]["replayed"])
	assert.EqualValues(t, 5, objs[0]["filtered"])
}

func TestPoisonListGroup(t *testing.T) {
	t.Parallel()
	f := newGroupsFixture(t)

	r := f.eventfx(t, "poison", "list", "--group", f.timeout)

	out := lines(r.stdout)
	require.Len(t, out, 3, "%s", r)
	for i, id := range []string{"id-1", "id-3", "id-5"} {
		assert.Contains(t, out[i], " id="+id+" ")
		assert.Contains(t, out[i], " group="+f.timeout+" ")
	}
	assert.Contains(t, out[0], `reason="order 1234 failed: timeout after 30s"`, "the reasons as they are")
	assert.Contains(t, r.stderr, "3 poisoned messages on group "+f.timeout+" of "+f.poisonTopic+", 0 of them replayed")

	js := f.eventfx(t, "poison", "list", "--group", f.stock, "--json")
	objs := jsonLines(t, js.stdout)
	require.Len(t, objs, 1, "%s", js)
	assert.Equal(t, "id-2", objs[0]["id"])
	assert.Equal(t, f.stock, objs[0]["group"])
}

func TestPoisonStatsFallsBackToTheRecordTime(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	poisonTopic := kafkatest.Unique("poison")
	written := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	kafkatest.Produce(t, addr, &kgo.Record{Topic: poisonTopic, Value: []byte("x"), Timestamp: written, Headers: hdrs(
		poison.IDHeader, "m-1", meta.ReasonPoisoned, "boom 42", meta.TopicPoisoned, "orders", meta.HandlerPoisoned, "bill")})

	r := ok(t, nil, "poison", "stats", "--json", "--brokers", addr, "--topic", poisonTopic)

	var groups []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &groups), "%s", r)
	require.Len(t, groups, 1)
	assert.Equal(t, "2025-07-01T08:00:00Z", groups[0]["first_seen"], "no eventfx_poisoned_at: when the poison record was written")
	assert.Equal(t, "2025-07-01T08:00:00Z", groups[0]["last_seen"])
	assert.Equal(t, "boom <num>", groups[0]["reason"])
	assert.Equal(t, "boom 42", groups[0]["example"])
}

func TestPoisonStatsOnAMissingTopic(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	missing := kafkatest.Unique("nothing")

	text := ok(t, nil, "poison", "stats", "--brokers", addr, "--topic", missing)
	js := ok(t, nil, "poison", "stats", "--json", "--brokers", addr, "--topic", missing)

	assert.Empty(t, text.stdout)
	assert.Contains(t, text.stderr, "0 poisoned messages in 0 groups")
	assert.Equal(t, "[]\n", js.stdout, "an empty array, not null")
}

// Every service shares the poison topic: list and stats name the service of
// each failure, from eventfx_service or, for records without it, from the
// consumer group. Same-named handlers of two services failing the same way
// are one group (its ID does not depend on the service), naming both.
func TestPoisonListAndStatsShowTheService(t *testing.T) {
	t.Parallel()
	addr, poisonTopic, orders := broker(t), kafkatest.Unique("poison"), kafkatest.Unique("orders")
	rec := func(id, service, consumerGroup string) *kgo.Record {
		h := hdrs(poison.IDHeader, id, meta.ReasonPoisoned, "order 7 failed: timeout after 5s", meta.TopicPoisoned, orders,
			meta.HandlerPoisoned, "bill", meta.ConsumerGroup, consumerGroup, meta.PoisonedAt, "2025-06-01T12:00:00Z")
		if service != "" {
			h = append(h, hdrs(meta.Service, service)...)
		}
		return &kgo.Record{Topic: poisonTopic, Partition: 0, Value: []byte("{}"), Headers: h}
	}
	produceTo(t, addr, rec("id-1", "billing", "team.bill"), rec("id-2", "", "audit.bill"))
	run := func(args ...string) result {
		return ok(t, nil, append(args, "--brokers", addr, "--topic", poisonTopic)...)
	}

	list := jsonLines(t, run("poison", "list", "--json").stdout)
	text := lines(run("poison", "list").stdout)
	stats := run("poison", "stats", "--json")
	table := lines(run("poison", "stats").stdout)

	require.Len(t, list, 2)
	assert.Equal(t, []any{"billing", "audit"}, []any{list[0]["service"], list[1]["service"]},
		"eventfx_service, else the consumer group without .<handler>")
	require.Len(t, text, 2)
	assert.Contains(t, text[0], " service=billing ")
	assert.Contains(t, text[1], " service=audit ")
	var groups []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stats.stdout), &groups), "%s", stats)
	require.Len(t, groups, 1, "one class of failure: %s", stats)
	assert.Equal(t, "audit,billing", groups[0]["service"])
	assert.Equal(t, poison.GroupID(orders, "bill", "order <num> failed: timeout after <dur>"), groups[0]["group"], "the ID of earlier versions")
	require.Len(t, table, 2)
	assert.Equal(t, "audit,billing", spaces.Split(strings.TrimSpace(table[1]), -1)[5], "SERVICE column\n%s", strings.Join(table, "\n"))
}
