package main_test

import (
	"fmt"
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

// poisonFixture puts poisoned messages on a fresh poison topic, one
// partition in order (they are keyed alike), and returns the topic.
type poisonFixture struct {
	addr, poisonTopic, orders, payments string
	recs                                []poisonRecord
}

func newPoisonFixture(t *testing.T) poisonFixture {
	t.Helper()
	f := poisonFixture{
		addr:        broker(t),
		poisonTopic: kafkatest.Unique("poison"),
		orders:      kafkatest.Unique("orders"),
		payments:    kafkatest.Unique("payments"),
	}
	f.recs = []poisonRecord{
		{id: "id-1", topic: f.orders, handler: "bill", reason: "decode: invalid character 'x'", key: "customer-1", correlationID: "corr-1", payload: `{"n":1}`, attempts: "1",
			extra: hdrs(meta.ContentType, "application/json")},
		{id: "id-2", topic: f.orders, handler: "ship", reason: "timeout after 30s", key: "customer-2", correlationID: "corr-2", payload: `{"n":2}`, attempts: "6"},
		{id: "id-3", topic: f.payments, handler: "bill", reason: "panic: nil map", correlationID: "corr-3", payload: "raw bytes", attempts: "6",
			extra: hdrs(meta.Replayed, "1")},
	}
	var recs []*kgo.Record
	for _, r := range f.recs {
		rec := r.record(f.poisonTopic)
		rec.Partition = 0
		recs = append(recs, rec)
	}
	produceTo(t, f.addr, recs...)
	return f
}

// produceTo writes records to the partitions they name.
func produceTo(t *testing.T, addr string, recs ...*kgo.Record) {
	t.Helper()
	c := kafkatest.Client(t, addr, kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	require.NoError(t, c.ProduceSync(ctx, recs...).FirstErr())
}

// group is the group ID of the fixture's record i.
func (f poisonFixture) group(i int) string {
	r := f.recs[i]
	return poison.GroupID(r.topic, r.handler, poison.Fingerprint(r.reason))
}

func (f poisonFixture) eventfx(t *testing.T, args ...string) result {
	t.Helper()
	return ok(t, nil, append(append([]string(nil), args...), "--brokers", f.addr, "--topic", f.poisonTopic)...)
}

func TestPoisonListText(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "list")

	out := lines(r.stdout)
	require.Len(t, out, 3, "%s", r)
	assert.Equal(t, fmt.Sprintf(`2025-06-01T12:00:00.5Z id=id-1 topic=%s handler=bill service=svc attempts=1 correlation_id=corr-1 replayed=false poison=0/0 group=%s reason="decode: invalid character 'x'"`,
		f.orders, f.group(0)), out[0])
	assert.Equal(t, fmt.Sprintf(`2025-06-01T12:00:00.5Z id=id-2 topic=%s handler=ship service=svc attempts=6 correlation_id=corr-2 replayed=false poison=0/1 group=%s reason="timeout after 30s"`,
		f.orders, f.group(1)), out[1])
	assert.Equal(t, fmt.Sprintf(`2025-06-01T12:00:00.5Z id=id-3 topic=%s handler=bill service=svc attempts=6 correlation_id=corr-3 replayed=false poison=0/2 group=%s reason="panic: nil map"`,
		f.payments, f.group(2)), out[2])
	assert.Contains(t, r.stderr, "3 poisoned messages")
}

func TestPoisonListJSON(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "list", "--json")

	objs := jsonLines(t, r.stdout)
	require.Len(t, objs, 3, "%s", r)
	for i, o := range objs {
		want := f.recs[i]
		for _, k := range []string{"id", "topic", "handler", "reason", "attempts", "poisoned_at", "correlation_id", "service"} {
			assert.Contains(t, o, k, "contract key")
		}
		assert.Equal(t, "svc", o["service"], "the consumer group's prefix")
		assert.Equal(t, want.id, o["id"])
		assert.Equal(t, want.topic, o["topic"])
		assert.Equal(t, want.handler, o["handler"])
		assert.Equal(t, want.reason, o["reason"])
		assert.IsType(t, float64(0), o["attempts"], "attempts is a number")
		assert.Equal(t, want.attempts, fmt.Sprint(o["attempts"]))
		assert.Equal(t, "2025-06-01T12:00:00.5Z", o["poisoned_at"])
		assert.Equal(t, want.correlationID, o["correlation_id"])
		assert.Equal(t, f.group(i), o["group"])
		assert.Equal(t, false, o["replayed"])
		assert.EqualValues(t, i, o["poison_offset"])
	}
}

func TestPoisonReplay(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "replay")

	assert.Equal(t, "replayed 3, skipped 0 (already replayed 0, filtered 0), failed 0", last(r.stdout), "%s", r)
	assert.Len(t, lines(r.stdout), 4, "a line per message and the summary\n%s", r)
	orders := kafkatest.Read(t, f.addr, f.orders, 2, 10*time.Second)
	payments := kafkatest.Read(t, f.addr, f.payments, 1, 10*time.Second)
	byID := map[string]*kgo.Record{}
	for _, rec := range append(orders, payments...) {
		byID[kafkatest.Headers(rec)[poison.IDHeader]] = rec
	}
	require.Len(t, byID, 3, kafkatest.Describe(append(orders, payments...)))
	for _, want := range f.recs {
		rec := byID[want.id]
		require.NotNil(t, rec, "replay of %s", want.id)
		h := kafkatest.Headers(rec)
		assert.Equal(t, want.topic, rec.Topic)
		assert.Equal(t, want.payload, string(rec.Value))
		assert.Equal(t, keyBytes(want.key), rec.Key, "same key; no key stays no key")
		assert.Equal(t, want.correlationID, h[meta.CorrelationID])
		assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", h["traceparent"], "other headers kept")
		for _, ph := range meta.PoisonHeaders {
			assert.NotContains(t, h, ph, "poison header removed")
		}
		assert.Equal(t, "svc."+want.handler, h[meta.ReplayFor], "for the consumer group that poisoned it")
	}
	assert.Equal(t, "application/json", kafkatest.Headers(byID["id-1"])[meta.ContentType])
	assert.Equal(t, "1", kafkatest.Headers(byID["id-1"])[meta.Replayed], "first replay")
	assert.Equal(t, "2", kafkatest.Headers(byID["id-3"])[meta.Replayed], "a replayed message poisoned again: second replay")
	assert.Equal(t, int64(3), kafkatest.Count(t, f.addr, poison.LedgerTopic(f.poisonTopic)), "one ledger entry per replay")

	again := f.eventfx(t, "poison", "replay")
	assert.Equal(t, "replayed 0, skipped 3 (already replayed 3, filtered 0), failed 0", last(again.stdout), "%s", again)
	assert.Equal(t, int64(2), kafkatest.Count(t, f.addr, f.orders), "nothing replayed twice")
	assert.Equal(t, int64(1), kafkatest.Count(t, f.addr, f.payments), "nothing replayed twice")

	list := f.eventfx(t, "poison", "list", "--json")
	for _, o := range jsonLines(t, list.stdout) {
		assert.Equal(t, true, o["replayed"], "list shows %v as replayed", o["id"])
	}
}

func TestPoisonReplayDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "replay", "--dry-run")

	out := lines(r.stdout)
	require.Len(t, out, 4, "%s", r)
	assert.Regexp(t, `^would replay id=id-1 topic=\S+ handler=bill poison=0/0 replay=1$`, out[0])
	assert.Equal(t, "would replay 3, skipped 0 (already replayed 0, filtered 0), failed 0 (dry run: nothing written)", out[3])
	assert.Zero(t, kafkatest.Count(t, f.addr, f.orders), "original topic")
	assert.Zero(t, kafkatest.Count(t, f.addr, f.payments), "original topic")
	assert.Zero(t, kafkatest.Count(t, f.addr, poison.LedgerTopic(f.poisonTopic)), "ledger")
	assert.Equal(t, int64(3), kafkatest.Count(t, f.addr, f.poisonTopic), "poison topic")

	real := f.eventfx(t, "poison", "replay")
	assert.Equal(t, "replayed 3, skipped 0 (already replayed 0, filtered 0), failed 0", last(real.stdout), "a dry run leaves everything to replay")
}

func TestPoisonReplayHandlerFilterLeavesTheRestForALaterRun(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "replay", "--handler", "ship")
	assert.Equal(t, "replayed 1, skipped 2 (already replayed 0, filtered 2), failed 0", last(r.stdout), "%s", r)
	assert.Regexp(t, `^replayed id=id-2 topic=\S+ handler=ship poison=0/1 partition=\d+ offset=0 replay=1$`, lines(r.stdout)[0])

	// Another filter: records replayed by the first run stay replayed.
	r = f.eventfx(t, "poison", "replay", "--handler", "bill")
	assert.Equal(t, "replayed 2, skipped 1 (already replayed 1, filtered 0), failed 0", last(r.stdout), "%s", r)

	r = f.eventfx(t, "poison", "replay")
	assert.Equal(t, "replayed 0, skipped 3 (already replayed 3, filtered 0), failed 0", last(r.stdout), "%s", r)
	assert.Equal(t, int64(2), kafkatest.Count(t, f.addr, f.orders))
	assert.Equal(t, int64(1), kafkatest.Count(t, f.addr, f.payments))
}

func TestPoisonReplayForAnotherConsumerGroup(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "replay", "--handler", "ship", "--consumer-group", "renamed.ship")

	assert.Equal(t, "replayed 1, skipped 2 (already replayed 0, filtered 2), failed 0", last(r.stdout), "%s", r)
	rec := kafkatest.Read(t, f.addr, f.orders, 1, 10*time.Second)[0]
	assert.Equal(t, "renamed.ship", kafkatest.Headers(rec)[meta.ReplayFor])
}

func TestPoisonReplayLimit(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "replay", "--limit", "2")
	assert.Equal(t, "replayed 2, skipped 1 (already replayed 0, filtered 0, over limit 1), failed 0", last(r.stdout), "%s", r)

	r = f.eventfx(t, "poison", "replay", "--limit", "2")
	assert.Equal(t, "replayed 1, skipped 2 (already replayed 2, filtered 0), failed 0", last(r.stdout), "%s", r)
	assert.Contains(t, r.stdout, "id=id-3", "the record left by the limit is replayed next")
}

func TestPoisonReplayJSON(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "replay", "--handler", "ship", "--json")

	objs := jsonLines(t, r.stdout)
	require.Len(t, objs, 1, "one JSON object\n%s", r)
	o := objs[0]
	assert.EqualValues(t, 1, o["replayed"])
	assert.EqualValues(t, 2, o["skipped"])
	assert.EqualValues(t, 2, o["filtered"])
	assert.EqualValues(t, 0, o["failed"])
	msgs := o["messages"].([]any)
	require.Len(t, msgs, 1)
	m := msgs[0].(map[string]any)
	assert.Equal(t, "replayed", m["action"])
	assert.Equal(t, "id-2", m["id"])
	assert.Equal(t, f.group(1), m["group"])
	assert.EqualValues(t, 0, m["offset"])
}

func TestPoisonReplayReportsUnreplayableRecords(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	poisonTopic := kafkatest.Unique("poison")
	kafkatest.Produce(t, addr, &kgo.Record{Topic: poisonTopic, Value: []byte("x"), Headers: hdrs(poison.IDHeader, "lost", meta.ReasonPoisoned, "?")})

	r := ok(t, nil, "poison", "replay", "--brokers", addr, "--topic", poisonTopic)

	assert.Regexp(t, `^unreplayable id=lost topic="" handler="" poison=\d+/0 error="not replayable: no topic_poisoned header"$`, lines(r.stdout)[0], "%s", r)
	assert.Equal(t, "replayed 0, skipped 1 (already replayed 0, filtered 0, unreplayable 1), failed 0", last(r.stdout))
}

func TestPoisonCommandsOnAMissingTopic(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	missing := kafkatest.Unique("nothing")

	list := ok(t, nil, "poison", "list", "--brokers", addr, "--topic", missing)
	assert.Empty(t, list.stdout)
	replay := ok(t, nil, "poison", "replay", "--brokers", addr, "--topic", missing)
	assert.Equal(t, "replayed 0, skipped 0 (already replayed 0, filtered 0), failed 0", strings.TrimSpace(replay.stdout))
	assert.Zero(t, kafkatest.Count(t, addr, poison.LedgerTopic(missing)), "no ledger written")
}

func TestPoisonTopicFromConfig(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)
	cfg := writeFile(t, "eventfx.yaml", "kafka:\n  brokers: ["+f.addr+"]\npoison:\n  topic: "+f.poisonTopic+"\n")

	r := ok(t, nil, "poison", "list", "--config", cfg)

	assert.Len(t, lines(r.stdout), 3, "poison.topic and kafka.brokers from the config\n%s", r)
}

// last is the last non-empty line of s.
func last(s string) string {
	l := lines(s)
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

// keyBytes is the Kafka key of k: nil when empty.
func keyBytes(k string) []byte {
	if k == "" {
		return nil
	}
	return []byte(k)
}
