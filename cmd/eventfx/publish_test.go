package main_test

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/proctest"
)

func TestPublishWritesEventfxWireFormat(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	topic := kafkatest.Unique("orders")

	r := ok(t, nil, "publish", "--brokers", addr, "--topic", topic, "--key", "customer-7", "--correlation-id", "corr-1", `{"total": 12}`)

	out := lines(r.stdout)
	require.Len(t, out, 1, "one line per message\n%s", r)
	m := published.FindStringSubmatch(out[0])
	require.NotNil(t, m, "published line: %q", out[0])
	recs := kafkatest.Read(t, addr, topic, 1, 10*time.Second)
	require.Len(t, recs, 1)
	rec := recs[0]
	h := kafkatest.Headers(rec)
	assert.Equal(t, `{"total": 12}`, string(rec.Value), "payload untouched")
	assert.Equal(t, "customer-7", string(rec.Key))
	assert.Equal(t, m[1], h[poison.IDHeader], "the printed ID is the ID header")
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, h[poison.IDHeader])
	assert.Equal(t, "corr-1", h[meta.CorrelationID])
	assert.Equal(t, "corr-1", m[5])
	assert.Equal(t, topic, m[2])
	assert.Equal(t, strconv.Itoa(int(rec.Partition)), m[3], "printed partition")
	assert.Equal(t, strconv.FormatInt(rec.Offset, 10), m[4], "printed offset")

	// Same key, same partition as eventfx's services and Java clients
	// (murmur2, kafka.partitioner's default), on the broker's 8 partitions.
	want := kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: []byte("customer-7")}, 8)
	assert.Equal(t, int32(want), rec.Partition, "partition of key customer-7")
}

func TestPublishStdinLinesThenTailThem(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	topic := kafkatest.Unique("lines")

	r := ok(t, strings.NewReader("one\ntwo\n\nthree\n"), "publish", "--brokers", addr, "--topic", topic)

	out := lines(r.stdout)
	require.Len(t, out, 3, "one line per non-empty input line\n%s", r)
	ids := map[string]bool{}
	for _, l := range out {
		m := published.FindStringSubmatch(l)
		require.NotNil(t, m, "published line: %q", l)
		ids[m[1]] = true
	}
	assert.Len(t, ids, 3, "a new ID per message")
	recs := kafkatest.Read(t, addr, topic, 3, 10*time.Second)
	require.Len(t, recs, 3, kafkatest.Describe(recs))
	payloads := map[string]bool{}
	for _, rec := range recs {
		h := kafkatest.Headers(rec)
		payloads[string(rec.Value)] = true
		assert.Nil(t, rec.Key, "no --key: null key")
		assert.True(t, ids[h[poison.IDHeader]], "ID header %q was printed", h[poison.IDHeader])
		assert.NotEmpty(t, h[meta.CorrelationID], "a generated correlation ID")
	}
	assert.Equal(t, map[string]bool{"one": true, "two": true, "three": true}, payloads)

	tr := ok(t, nil, "tail", "--brokers", addr, "--topic", topic, "--from-beginning", "--limit", "3", "--json")
	objs := jsonLines(t, tr.stdout)
	require.Len(t, objs, 3, "%s", tr)
	for _, o := range objs {
		assert.ElementsMatch(t, []string{"id", "topic", "partition", "offset", "key", "correlation_id", "headers", "payload", "timestamp"}, keysOf(o))
		assert.True(t, ids[o["id"].(string)], "tail shows the published ID %v", o["id"])
		assert.Equal(t, topic, o["topic"])
		assert.Nil(t, o["key"])
		assert.Equal(t, o["id"], o["headers"].(map[string]any)[poison.IDHeader])
		_, err := time.Parse(time.RFC3339Nano, o["timestamp"].(string))
		assert.NoError(t, err, "timestamp")
		delete(payloads, o["payload"].(string))
	}
	assert.Empty(t, payloads, "tail showed every payload")
}

func TestTailFromTheEndShowsOnlyNewRecords(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	topic := kafkatest.Unique("tail")
	ok(t, nil, "publish", "--brokers", addr, "--topic", topic, "--key", "k", "old")

	bin := proctest.Build(t, eventfxPkg)
	p := proctest.Start(t, bin, nil, "tail", "--brokers", addr, "--topic", topic, "--limit", "2")
	p.WaitOutput(`tailing \S+ from the end \(stops after 2 records, or Ctrl-C\)`, 15*time.Second)
	ok(t, strings.NewReader("new 1\nnew\t2\n"), "publish", "--brokers", addr, "--topic", topic, "--key", "k", "--correlation-id", "c-9")
	require.Equal(t, 0, p.Wait(15*time.Second), p.Output())

	var recs []string
	for _, l := range lines(p.Output()) {
		if !strings.HasPrefix(l, "eventfx:") {
			recs = append(recs, l)
		}
	}
	require.Len(t, recs, 2, p.Output())
	assert.Regexp(t, `^\d+/1 id=\S+ correlation_id=c-9 key=k new 1$`, recs[0])
	assert.Regexp(t, `^\d+/2 id=\S+ correlation_id=c-9 key=k "new\\t2"$`, recs[1], "a payload with a control character is quoted")
}

func TestTailStopsOnSIGINT(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	bin := proctest.Build(t, eventfxPkg)
	p := proctest.Start(t, bin, nil, "tail", "--brokers", addr, "--topic", kafkatest.Unique("quiet"))
	p.WaitOutput(`tailing \S+ from the end \(Ctrl-C to stop\)`, 15*time.Second)
	p.Signal(interrupt)
	assert.Equal(t, 0, p.Wait(10*time.Second), p.Output())
}

func TestTailJSONOfAnotherProducersBinaryRecord(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	topic := kafkatest.Unique("foreign")
	kafkatest.Produce(t, addr, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte{0xff, 0x00, 'a'}})

	r := ok(t, nil, "tail", "--brokers", addr, "--topic", topic, "--from-beginning", "--limit", "1", "--json")

	objs := jsonLines(t, r.stdout)
	require.Len(t, objs, 1, "%s", r)
	o := objs[0]
	assert.Equal(t, fmt.Sprintf("%s-%v-0", topic, o["partition"]), o["id"], "the stable ID of a record without an ID header")
	assert.Equal(t, "k", o["key"])
	assert.Equal(t, "", o["correlation_id"])
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 'a'}), o["payload_base64"], "binary payload, exactly")
	assert.Empty(t, o["headers"])
}
