package main_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/poison"
)

func TestPoisonCommandsReportUnreadableLedgerRecords(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)
	ledger := poison.LedgerTopic(f.poisonTopic)
	kafkatest.Produce(t, f.addr,
		poison.Entry{PoisonPartition: 0, PoisonOffset: 1, ID: "id-2"}.Record(ledger),
		&kgo.Record{Topic: ledger, Key: []byte("bogus"), Value: []byte("{}")},
	)
	want := `eventfx: ` + ledger + `: ignored: ledger record \d+/\d+: key "bogus" is not <partition>/<offset>`

	list := f.eventfx(t, "poison", "list")
	assert.Regexp(t, want, list.stderr)
	assert.Contains(t, list.stderr, "3 poisoned messages on "+f.poisonTopic+", 1 of them replayed", "%s", list)
	assert.Contains(t, lines(list.stdout)[1], "id=id-2 ", "%s", list)
	assert.Contains(t, lines(list.stdout)[1], "replayed=true", "%s", list)

	replay := f.eventfx(t, "poison", "replay")
	assert.Regexp(t, want, replay.stderr)
	assert.Equal(t, "replayed 2, skipped 1 (already replayed 1, filtered 0), failed 0", last(replay.stdout), "%s", replay)
}

func TestPoisonReplayDryRunJSON(t *testing.T) {
	t.Parallel()
	f := newPoisonFixture(t)

	r := f.eventfx(t, "poison", "replay", "--dry-run", "--json", "--limit", "1")

	objs := jsonLines(t, r.stdout)
	assert.Len(t, objs, 1, "one JSON object\n%s", r)
	o := objs[0]
	assert.Equal(t, true, o["dry_run"])
	assert.EqualValues(t, 1, o["replayed"])
	assert.EqualValues(t, 2, o["skipped"])
	assert.EqualValues(t, 2, o["over_limit"])
	assert.EqualValues(t, 0, o["not_recorded"])
	msgs := o["messages"].([]any)
	assert.Len(t, msgs, 1)
	m := msgs[0].(map[string]any)
	assert.Equal(t, "would_replay", m["action"])
	assert.Equal(t, "id-1", m["id"])
	assert.NotContains(t, m, "offset", "nothing was written")
	assert.Zero(t, kafkatest.Count(t, f.addr, f.orders))
}
