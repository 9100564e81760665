package poison_test

import (
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

// fixture is a broker with a fresh poison topic of one partition (so its
// records keep their order) holding three poisoned messages:
//
//	0/0 id-1 to orders by handler bill (a first poisoning)
//	0/1 id-2 to orders by handler ship
//	0/2 id-3 to payments by handler bill (poisoned again after a replay)
type fixture struct {
	addr, poisonTopic, orders, payments string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{
		addr:        kafkatest.Broker(t),
		poisonTopic: kafkatest.Unique("poison"),
		orders:      kafkatest.Unique("orders"),
		payments:    kafkatest.Unique("payments"),
	}
	createTopic(t, f.addr, f.poisonTopic, nil)
	kafkatest.Produce(t, f.addr,
		poisonRecord(f.poisonTopic, "id-1", f.orders, "bill", "customer-1", meta.ContentType, "application/json"),
		poisonRecord(f.poisonTopic, "id-2", f.orders, "ship", "customer-2"),
		poisonRecord(f.poisonTopic, "id-3", f.payments, "bill", "", meta.Replayed, "1"),
	)
	return f
}

// poisonRecord is a poison record as router.Poison writes it: the original
// headers (ID, correlation ID, extra), then the poison headers.
func poisonRecord(poisonTopic, id, topic, handler, key string, extra ...string) *kgo.Record {
	h := hdrs(poison.IDHeader, id, meta.CorrelationID, "corr-"+id)
	h = append(h, hdrs(extra...)...)
	h = append(h, hdrs(
		meta.ReasonPoisoned, "boom "+id,
		meta.TopicPoisoned, topic,
		meta.HandlerPoisoned, handler,
		meta.SubscriberPoisoned, "svc."+handler,
		meta.Attempts, "6",
		meta.PoisonedAt, "2025-06-01T12:00:00Z",
		meta.ConsumerGroup, "svc."+handler,
		meta.OriginalPartition, "0",
		meta.OriginalOffset, "17",
	)...)
	r := &kgo.Record{Topic: poisonTopic, Value: []byte("payload " + id), Headers: h}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

// createTopic creates topic with one partition and configs.
func createTopic(t *testing.T, addr, topic string, configs map[string]*string) {
	t.Helper()
	_, err := kadm.NewClient(kafkatest.Client(t, addr)).CreateTopic(testContext(t), 1, -1, configs, topic)
	require.NoError(t, err, "create topic %s", topic)
}

// replay runs c.Replay with o, and returns the summary, the records Replay
// reported, and the error.
func replay(t *testing.T, c *poison.Client, o poison.ReplayOptions) (poison.ReplaySummary, []poison.ReplayResult, error) {
	t.Helper()
	var results []poison.ReplayResult
	o.Report = func(r poison.ReplayResult) error {
		results = append(results, r)
		return nil
	}
	sum, err := c.Replay(testContext(t), o)
	return sum, results, err
}

// describe renders results for failure messages.
func describe(results []poison.ReplayResult) string {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "\n  %v %s poison=%d/%d err=%v", r.Action, r.Record.ID, r.Record.PoisonPartition, r.Record.PoisonOffset, r.Err)
	}
	return b.String()
}

func ids(recs []poison.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func resultIDs(results []poison.ReplayResult) []string {
	out := make([]string, len(results))
	for i, r := range results {
		out[i] = r.Record.ID
	}
	return out
}

func TestListReturnsParsedRecordsMarkedFromTheLedger(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ledger := poison.LedgerTopic(f.poisonTopic)
	kafkatest.Produce(t, f.addr,
		poison.Entry{PoisonPartition: 0, PoisonOffset: 1, ID: "id-2", Topic: f.orders}.Record(ledger),
		&kgo.Record{Topic: ledger, Key: []byte("not a position"), Value: []byte("{}")},
	)
	var bad []string
	c := dial(t, f.addr, poison.OnBadLedgerRecord(func(topic string, err error) {
		bad = append(bad, topic+": "+err.Error())
	}))

	recs, err := c.List(testContext(t), f.poisonTopic)

	require.NoError(t, err)
	require.Equal(t, []string{"id-1", "id-2", "id-3"}, ids(recs), "the poison topic's records in order")
	first := recs[0]
	assert.Equal(t, f.poisonTopic, first.PoisonTopic)
	assert.Equal(t, int32(0), first.PoisonPartition)
	assert.Equal(t, int64(0), first.PoisonOffset)
	assert.Equal(t, f.orders, first.Topic)
	assert.Equal(t, "bill", first.Handler)
	assert.Equal(t, "boom id-1", first.Reason)
	assert.Equal(t, 6, first.Attempts)
	assert.Equal(t, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), first.PoisonedAt)
	assert.Equal(t, "corr-id-1", first.CorrelationID)
	assert.Equal(t, []byte("customer-1"), first.Key)
	assert.Equal(t, []byte("payload id-1"), first.Payload)
	assert.Equal(t, 1, recs[2].Replayed, "eventfx_replayed of id-3")
	assert.Equal(t, []bool{false, true, false}, []bool{recs[0].AlreadyReplayed, recs[1].AlreadyReplayed, recs[2].AlreadyReplayed},
		"only id-2 has a ledger entry")
	require.Len(t, bad, 1, "the ledger record with a bad key is reported: %v", bad)
	assert.Contains(t, bad[0], ledger+": ")
	assert.Contains(t, bad[0], "is not <partition>/<offset>")
}

func TestListOfAMissingTopicIsEmpty(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	c := dial(t, addr)
	missing := kafkatest.Unique("missing")

	recs, err := c.List(testContext(t), missing)

	require.NoError(t, err)
	assert.Empty(t, recs)
	ends, err := c.EndOffsets(testContext(t), poison.LedgerTopic(missing))
	require.NoError(t, err)
	assert.Nil(t, ends, "List creates no ledger")
}

func TestListSeesRecordsWrittenSinceTheLastList(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	c := dial(t, addr)
	poisonTopic, orders := kafkatest.Unique("poison"), kafkatest.Unique("orders")
	before, err := c.List(testContext(t), poisonTopic)
	require.NoError(t, err)
	require.Empty(t, before, "the topic does not exist yet")

	kafkatest.Produce(t, addr, poisonRecord(poisonTopic, "id-1", orders, "bill", ""))
	after, err := c.List(testContext(t), poisonTopic)

	require.NoError(t, err)
	assert.Equal(t, []string{"id-1"}, ids(after), "the same Client sees the topic created since")
}

func TestListRejectsABadTopicName(t *testing.T) {
	t.Parallel()
	c := dial(t, kafkatest.Broker(t))

	_, err := c.List(testContext(t), "a b")

	assert.ErrorContains(t, err, "poison topic")
}

func TestReplayRepublishesOnceThenReplaysNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := dial(t, f.addr)

	sum, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic})

	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 3}, sum)
	require.Equal(t, []string{"id-1", "id-2", "id-3"}, resultIDs(results), describe(results))
	for _, r := range results {
		assert.Equal(t, poison.ActionReplayed, r.Action, r.Record.ID)
		assert.NoError(t, r.Err, r.Record.ID)
		require.NotNil(t, r.Replay, "the republished record of %s", r.Record.ID)
		assert.Equal(t, r.Record.Topic, r.Replay.Topic, r.Record.ID)
	}
	orders := kafkatest.Read(t, f.addr, f.orders, 2, testTimeout)
	payments := kafkatest.Read(t, f.addr, f.payments, 1, testTimeout)
	byID := map[string]*kgo.Record{}
	for _, rec := range append(orders, payments...) {
		byID[kafkatest.Headers(rec)[poison.IDHeader]] = rec
	}
	require.Len(t, byID, 3, kafkatest.Describe(append(orders, payments...)))
	for id, rec := range byID {
		h := kafkatest.Headers(rec)
		assert.Equal(t, "payload "+id, string(rec.Value))
		assert.Equal(t, "corr-"+id, h[meta.CorrelationID])
		for _, ph := range meta.PoisonHeaders {
			assert.NotContains(t, h, ph, "%s: poison header removed", id)
		}
	}
	assert.Equal(t, []byte("customer-1"), byID["id-1"].Key, "same key")
	assert.Equal(t, "application/json", kafkatest.Headers(byID["id-1"])[meta.ContentType], "other headers kept")
	assert.Equal(t, "1", kafkatest.Headers(byID["id-1"])[meta.Replayed], "first replay")
	assert.Equal(t, "2", kafkatest.Headers(byID["id-3"])[meta.Replayed], "second replay")
	assert.Equal(t, int64(3), kafkatest.Count(t, f.addr, poison.LedgerTopic(f.poisonTopic)), "one ledger entry per replay")

	again, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic})

	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{AlreadyReplayed: 3}, again)
	assert.Empty(t, results, "skipped records are not reported")
	assert.Equal(t, int64(2), kafkatest.Count(t, f.addr, f.orders), "nothing replayed twice")
	assert.Equal(t, int64(1), kafkatest.Count(t, f.addr, f.payments), "nothing replayed twice")
	recs, err := c.List(testContext(t), f.poisonTopic)
	require.NoError(t, err)
	for _, r := range recs {
		assert.True(t, r.AlreadyReplayed, "List shows %s as replayed", r.ID)
	}
}

func TestReplayCreatesACompactedLedger(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := dial(t, f.addr)

	_, _, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, Limit: 1})
	require.NoError(t, err)

	ledger := poison.LedgerTopic(f.poisonTopic)
	cfgs, err := kadm.NewClient(kafkatest.Client(t, f.addr)).DescribeTopicConfigs(testContext(t), ledger)
	require.NoError(t, err)
	rc, err := cfgs.On(ledger, nil)
	require.NoError(t, err)
	require.NoError(t, rc.Err)
	policy := ""
	for _, cfg := range rc.Configs {
		if cfg.Key == "cleanup.policy" && cfg.Value != nil {
			policy = *cfg.Value
		}
	}
	assert.Equal(t, "compact", policy, "cleanup.policy of %s", ledger)
}

func TestReplayDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := dial(t, f.addr)

	sum, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, DryRun: true})

	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{DryRun: true, Replayed: 3}, sum)
	assert.Equal(t, "would replay 3, skipped 0 (already replayed 0, filtered 0), failed 0 (dry run: nothing written)", sum.String())
	require.Equal(t, []string{"id-1", "id-2", "id-3"}, resultIDs(results), describe(results))
	for _, r := range results {
		assert.Equal(t, poison.ActionWouldReplay, r.Action, r.Record.ID)
		assert.Nil(t, r.Replay, r.Record.ID)
	}
	assert.Zero(t, kafkatest.Count(t, f.addr, f.orders), "original topic")
	assert.Zero(t, kafkatest.Count(t, f.addr, f.payments), "original topic")
	ends, err := c.EndOffsets(testContext(t), poison.LedgerTopic(f.poisonTopic))
	require.NoError(t, err)
	assert.Nil(t, ends, "no ledger topic")

	real, _, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 3}, real, "a dry run leaves everything to replay")
}

func TestReplayHandlerFilterLeavesTheOthersForLater(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := dial(t, f.addr)

	ship, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, Handler: "ship"})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 1, Filtered: 2}, ship)
	assert.Equal(t, []string{"id-2"}, resultIDs(results))

	// Another filter: what the first run replayed stays replayed.
	bill, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, Handler: "bill"})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 2, AlreadyReplayed: 1}, bill)
	assert.Equal(t, []string{"id-1", "id-3"}, resultIDs(results))

	all, _, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{AlreadyReplayed: 3}, all)
	assert.Equal(t, int64(2), kafkatest.Count(t, f.addr, f.orders))
	assert.Equal(t, int64(1), kafkatest.Count(t, f.addr, f.payments))
}

func TestReplayLimitLeavesTheRestForLater(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := dial(t, f.addr)

	first, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 2, OverLimit: 1}, first)
	assert.Equal(t, []string{"id-1", "id-2"}, resultIDs(results))

	second, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 1, AlreadyReplayed: 2}, second)
	assert.Equal(t, []string{"id-3"}, resultIDs(results))
}

func TestReplayReportsUnreplayableRecordsAndWritesNothing(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	poisonTopic := kafkatest.Unique("poison")
	kafkatest.Produce(t, addr, &kgo.Record{Topic: poisonTopic, Value: []byte("x"), Headers: hdrs(poison.IDHeader, "lost", meta.ReasonPoisoned, "?")})
	c := dial(t, addr)

	sum, results, err := replay(t, c, poison.ReplayOptions{Topic: poisonTopic})

	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Unreplayable: 1}, sum)
	require.Len(t, results, 1)
	assert.Equal(t, poison.ActionUnreplayable, results[0].Action)
	assert.ErrorIs(t, results[0].Err, poison.ErrNotReplayable)
	ends, err := c.EndOffsets(testContext(t), poison.LedgerTopic(poisonTopic))
	require.NoError(t, err)
	assert.Nil(t, ends, "no ledger topic when nothing was replayed")
}

func TestReplayCountsFailuresAndTriesThemAgainLater(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	poisonTopic, small, payments := kafkatest.Unique("poison"), kafkatest.Unique("small"), kafkatest.Unique("payments")
	limit := "200"
	createTopic(t, addr, small, map[string]*string{"max.message.bytes": &limit})
	createTopic(t, addr, poisonTopic, nil)
	big := poisonRecord(poisonTopic, "big", small, "bill", "")
	big.Value = make([]byte, 1000) // incompressible: too large for its original topic
	_, _ = rand.NewChaCha8([32]byte{}).Read(big.Value)
	kafkatest.Produce(t, addr, big, poisonRecord(poisonTopic, "fits", payments, "bill", ""))
	c := dial(t, addr)

	sum, results, err := replay(t, c, poison.ReplayOptions{Topic: poisonTopic})

	incomplete, ok := errors.AsType[*poison.IncompleteError](err)
	require.True(t, ok, "want an *IncompleteError, got %v", err)
	assert.Equal(t, poison.IncompleteError{Failed: 1}, *incomplete)
	assert.Equal(t, "1 messages not replayed, 0 replayed but not recorded", err.Error())
	assert.Equal(t, poison.ReplaySummary{Replayed: 1, Failed: 1}, sum)
	require.Equal(t, []string{"big", "fits"}, resultIDs(results), describe(results))
	assert.Equal(t, poison.ActionFailed, results[0].Action)
	assert.Error(t, results[0].Err, "why it failed")
	assert.Nil(t, results[0].Replay)
	assert.Equal(t, poison.ActionReplayed, results[1].Action)
	assert.Equal(t, int64(1), kafkatest.Count(t, addr, poison.LedgerTopic(poisonTopic)), "a ledger entry for the replayed record only")

	again, _, err := replay(t, c, poison.ReplayOptions{Topic: poisonTopic})
	assert.Error(t, err)
	assert.Equal(t, poison.ReplaySummary{AlreadyReplayed: 1, Failed: 1}, again, "the failed record is tried again")
}

func TestReplayStopsWhenReportFailsWithTheBatchRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := dial(t, f.addr)
	errStop := errors.New("stdout closed")

	sum, err := c.Replay(testContext(t), poison.ReplayOptions{
		Topic:  f.poisonTopic,
		Report: func(poison.ReplayResult) error { return errStop },
	})

	assert.ErrorIs(t, err, errStop)
	assert.Equal(t, poison.ReplaySummary{Replayed: 3}, sum, "the batch was replayed before the first report")
	assert.Equal(t, int64(3), kafkatest.Count(t, f.addr, poison.LedgerTopic(f.poisonTopic)), "and recorded")
	again, _, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{AlreadyReplayed: 3}, again)
}

func TestReplayOfAMissingTopicDoesNothing(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	c := dial(t, addr)
	missing := kafkatest.Unique("missing")

	sum, results, err := replay(t, c, poison.ReplayOptions{Topic: missing})

	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{}, sum)
	assert.Empty(t, results)
	assert.Zero(t, kafkatest.Count(t, addr, poison.LedgerTopic(missing)), "no ledger written")
}

func TestReplayOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    poison.ReplayOptions
		want []string
	}{
		{"no topic", poison.ReplayOptions{}, []string{"Topic:"}},
		{"bad topic", poison.ReplayOptions{Topic: "a b"}, []string{"Topic:"}},
		{"negative limit", poison.ReplayOptions{Topic: "p", Limit: -1}, []string{"Limit: -1 is negative"}},
		{"every bad field", poison.ReplayOptions{Limit: -2}, []string{"Topic:", "Limit: -2 is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			require.Error(t, err)
			for _, want := range tt.want {
				assert.ErrorContains(t, err, want)
			}
		})
	}
	assert.NoError(t, poison.ReplayOptions{Topic: "eventfx.poison", Handler: "bill", Limit: poison.NoLimit}.Validate())
}

func TestReplayRefusesBadOptionsBeforeReading(t *testing.T) {
	t.Parallel()
	c := dial(t, kafkatest.Broker(t))

	_, err := c.Replay(testContext(t), poison.ReplayOptions{Topic: "p", Limit: -1})

	assert.ErrorContains(t, err, "Limit")
}

func TestReplaySummaryString(t *testing.T) {
	tests := []struct {
		name string
		s    poison.ReplaySummary
		want string
	}{
		{"nothing", poison.ReplaySummary{}, "replayed 0, skipped 0 (already replayed 0, filtered 0), failed 0"},
		{"replayed and skipped", poison.ReplaySummary{Replayed: 3, AlreadyReplayed: 1, Filtered: 1},
			"replayed 3, skipped 2 (already replayed 1, filtered 1), failed 0"},
		{"over limit and unreplayable when not zero", poison.ReplaySummary{Replayed: 2, OverLimit: 1, Unreplayable: 2, Failed: 1},
			"replayed 2, skipped 3 (already replayed 0, filtered 0, over limit 1, unreplayable 2), failed 1"},
		{"not recorded", poison.ReplaySummary{Replayed: 2, NotRecorded: 1},
			"replayed 2, skipped 0 (already replayed 0, filtered 0), failed 0, not recorded 1 (replayed, but a later run replays them again: the ledger write failed)"},
		{"dry run", poison.ReplaySummary{DryRun: true, Replayed: 1, Filtered: 1},
			"would replay 1, skipped 1 (already replayed 0, filtered 1), failed 0 (dry run: nothing written)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.s.String())
		})
	}
}

// A replayed record goes to the partition its key maps to by the
// partitioner of its topic (kafka.partitioners), as every eventfx
// producer's records do.
func TestReplayPlacesKeysByTheTopicsPartitioner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, poisonRecord(f.poisonTopic, fmt.Sprintf("k-%d", i), f.payments, "bill", fmt.Sprintf("customer-%d", i)))
	}
	kafkatest.Produce(t, f.addr, recs...)
	k := config.Kafka{Partitioners: []config.TopicPartitioner{{Topic: f.payments, Partitioner: config.PartitionerCRC32}}}
	c, err := poison.Dial(testContext(t), []string{f.addr}, k)
	require.NoError(t, err)
	t.Cleanup(c.Close)

	_, _, err = replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic})
	require.NoError(t, err)
	for _, r := range kafkatest.Read(t, f.addr, f.payments, 31, testTimeout) {
		if len(r.Key) == 0 {
			continue // id-3, unkeyed
		}
		assert.Equal(t, int32(crc32.ChecksumIEEE(r.Key)%4), r.Partition, "partition of key %s", r.Key)
	}
}

func TestReplayIDsFilterReplaysOnlyThoseAndRecordsWho(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := dial(t, f.addr)

	sum, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, IDs: []string{"id-1", "id-3"}, By: "ops@example"})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 2, Filtered: 1}, sum)
	assert.Equal(t, []string{"id-1", "id-3"}, resultIDs(results))

	ledger := kafkatest.Read(t, f.addr, poison.LedgerTopic(f.poisonTopic), 2, 10*time.Second)
	for _, r := range ledger {
		e, err := poison.ParseEntry(r)
		require.NoError(t, err)
		assert.Equal(t, "ops@example", e.By, "ledger entry of %s", e.ID)
	}

	// The same IDs again: replayed already, never twice; the third is left.
	again, _, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic, IDs: []string{"id-1", "id-3"}})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{AlreadyReplayed: 2, Filtered: 1}, again)
	rest, results, err := replay(t, c, poison.ReplayOptions{Topic: f.poisonTopic})
	require.NoError(t, err)
	assert.Equal(t, poison.ReplaySummary{Replayed: 1, AlreadyReplayed: 2}, rest)
	assert.Equal(t, []string{"id-2"}, resultIDs(results))
}
