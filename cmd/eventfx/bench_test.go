package main_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// benchJSON is the --json output of eventfx bench.
type benchJSON struct {
	Config struct {
		Brokers    []string `json:"brokers"`
		Embedded   bool     `json:"embedded"`
		Topic      string   `json:"topic"`
		Partitions int      `json:"partitions"`
		Messages   int      `json:"messages"`
		Size       int      `json:"size"`
		Batch      int      `json:"batch"`
		Keys       int      `json:"keys"`
		Acks       string   `json:"acks"`
		Consume    string   `json:"consume"`
	} `json:"config"`
	// Rate is there with --rate only.
	Rate *struct {
		Requested   int     `json:"requested_per_sec"`
		Achieved    float64 `json:"achieved_per_sec"`
		MaxBehindMs float64 `json:"max_behind_ms"`
	} `json:"rate"`
	Publish struct {
		Messages  int     `json:"messages"`
		Seconds   float64 `json:"seconds"`
		MsgPerSec float64 `json:"msg_per_sec"`
		MBPerSec  float64 `json:"mb_per_sec"`
	} `json:"publish"`
	Consume struct {
		Messages   int     `json:"messages"`
		Duplicates int     `json:"duplicates"`
		Seconds    float64 `json:"seconds"`
		MsgPerSec  float64 `json:"msg_per_sec"`
	} `json:"consume"`
	Latency struct {
		P50, P90, P99, Max float64
	} `json:"latency_ms"`
}

func TestBenchOnTheEmbeddedBrokerConsumesEveryMessage(t *testing.T) {
	t.Parallel()

	r := ok(t, nil, "bench", "--messages", "2000", "--json")

	var b benchJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &b), "stdout is one JSON object\n%s", r)
	assert.Len(t, lines(r.stdout), 1, "one line of JSON")
	assert.True(t, b.Config.Embedded, "no --brokers: an embedded broker")
	assert.Regexp(t, `^eventfx\.bench\.[0-9a-f]+$`, b.Config.Topic)
	assert.Equal(t, 8, b.Config.Partitions)
	assert.Equal(t, 2000, b.Config.Messages)
	assert.Equal(t, 256, b.Config.Size)
	assert.Equal(t, 1000, b.Config.Batch)
	assert.Equal(t, "all", b.Config.Acks)
	assert.Equal(t, "partition", b.Config.Consume)
	assert.Equal(t, 2000, b.Publish.Messages)
	assert.Equal(t, 2000, b.Consume.Messages, "every message consumed")
	assert.Positive(t, b.Publish.MsgPerSec)
	assert.Positive(t, b.Publish.MBPerSec)
	assert.Positive(t, b.Consume.MsgPerSec)
	assert.Positive(t, b.Latency.Max)
	assert.LessOrEqual(t, b.Latency.P50, b.Latency.P90)
	assert.LessOrEqual(t, b.Latency.P90, b.Latency.P99)
	assert.LessOrEqual(t, b.Latency.P99, b.Latency.Max)
	assert.Contains(t, r.stderr, "(embedded, in this process)")
	assert.Nil(t, b.Rate, "no --rate: no rate object")
	assert.NotContains(t, r.stdout, `"rate"`)
}

func TestBenchAtARateReportsTheAchievedRate(t *testing.T) {
	t.Parallel()

	r := ok(t, nil, "bench", "--messages", "1000", "--rate", "2000", "--keys", "10", "--json")

	var b benchJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &b), "stdout is one JSON object\n%s", r)
	require.NotNil(t, b.Rate, "a rate object\n%s", r)
	assert.Equal(t, 2000, b.Rate.Requested)
	assert.InDelta(t, 2000, b.Rate.Achieved, 300)
	assert.GreaterOrEqual(t, b.Rate.MaxBehindMs, 0.0)
	assert.Equal(t, 1000, b.Consume.Messages, "every message consumed")
	assert.GreaterOrEqual(t, b.Publish.Seconds, 0.45, "paced over half a second")
	assert.Positive(t, b.Latency.Max)
	assert.LessOrEqual(t, b.Latency.P50, b.Latency.P99)
	assert.Contains(t, r.stderr, "1000 messages of 256 B at 2000/s")
}

var benchRateLine = regexp.MustCompile(`^rate requested=2000 achieved=([0-9.]+) max_behind=(\S+)$`)

func TestBenchAtARatePrintsARateLine(t *testing.T) {
	t.Parallel()

	r := ok(t, nil, "bench", "--messages", "500", "--rate", "2000")

	out := lines(r.stdout)
	require.Len(t, out, 5, "config, rate, publish, consume, latency\n%s", r)
	assert.True(t, strings.HasPrefix(out[0], "config "), out[0])
	m := benchRateLine.FindStringSubmatch(out[1])
	require.NotNil(t, m, "rate line: %q", out[1])
	assert.InDelta(t, 2000, number(t, m[1]), 300)
	assert.Regexp(t, `^[0-9.]+(ns|µs|ms|s)$`, m[2], "a duration")
	assert.True(t, strings.HasPrefix(out[2], "publish messages=500 "), out[2])
	assert.Regexp(t, benchLatencyLine, out[4])
}

var (
	benchConfigLine  = regexp.MustCompile(`^config brokers=(\S+) embedded=false topic=(\S+) partitions=3 messages=1500 size=64 batch=100 keys=7 acks=leader consume=partition$`)
	benchPublishLine = regexp.MustCompile(`^publish messages=1500 seconds=(\S+) msg_per_sec=(\d+) mb_per_sec=(\S+)$`)
	benchConsumeLine = regexp.MustCompile(`^consume messages=1500 duplicates=(\d+) seconds=(\S+) msg_per_sec=(\d+)$`)
	benchLatencyLine = regexp.MustCompile(`^latency p50=(\S+) p90=(\S+) p99=(\S+) max=(\S+)$`)
)

func TestBenchOnAClusterLeavesItsTopic(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	topic := kafkatest.Unique("bench")

	r := ok(t, nil, "bench", "--brokers", addr, "--topic", topic, "--messages", "1500", "--size", "64",
		"--batch", "100", "--partitions", "3", "--keys", "7", "--acks", "leader")

	out := lines(r.stdout)
	require.Len(t, out, 4, "config, publish, consume, latency\n%s", r)
	m := benchConfigLine.FindStringSubmatch(out[0])
	require.NotNil(t, m, "config line: %q", out[0])
	assert.Equal(t, addr, m[1])
	assert.Equal(t, topic, m[2])
	require.Regexp(t, benchPublishLine, out[1])
	require.Regexp(t, benchConsumeLine, out[2])
	lat := benchLatencyLine.FindStringSubmatch(out[3])
	require.NotNil(t, lat, "latency line: %q", out[3])
	for _, v := range lat[1:] {
		assert.Regexp(t, `^[0-9.]+(ns|µs|ms|s|m[0-9.]+s)$`, v, "a duration")
	}
	assert.Positive(t, number(t, benchPublishLine.FindStringSubmatch(out[1])[2]), "publish msg/s")
	assert.Positive(t, number(t, benchConsumeLine.FindStringSubmatch(out[2])[3]), "consume msg/s")
	// 1500 messages and the warm-up message stay on the topic.
	assert.Equal(t, int64(1501), kafkatest.Count(t, addr, topic))
}

func number(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

func TestBenchTimeoutSaysHowManyWereConsumed(t *testing.T) {
	t.Parallel()

	r := run(t, nil, "bench", "--messages", "10000000", "--timeout", "3s")

	assert.Equal(t, 1, r.code, "%s", r)
	assert.Empty(t, r.stdout, "no result")
	errLines := lines(r.stderr)
	require.NotEmpty(t, errLines, "%s", r)
	assert.Regexp(t, `^eventfx: timed out after 3s \(--timeout\): consumed \d+ of 10000000 messages \(published \d+\)$`, errLines[len(errLines)-1])
}

func TestBenchErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	noBroker := proctest.FreeAddr(t) // nothing listens there
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no messages", []string{"bench", "--messages", "0"}, `^eventfx: --messages must be at least 1, got 0$`},
		{"several bad flags", []string{"bench", "--size", "0", "--batch", "-1", "--acks", "some"},
			`^eventfx: --size must be at least 1, got 0; --batch must be at least 1, got -1; --acks must be all or leader, got "some"$`},
		{"bad topic", []string{"bench", "--topic", "a b"}, `^eventfx: --topic: `},
		{"zero rate", []string{"bench", "--rate", "0"}, `^eventfx: --rate must be positive \(messages per second\), got 0$`},
		{"negative rate", []string{"bench", "--rate", "-10"}, `^eventfx: --rate must be positive \(messages per second\), got -10$`},
		{"rate too slow for the timeout", []string{"bench", "--rate", "100", "--messages", "20000", "--timeout", "1m"},
			`^eventfx: --messages 20000 at --rate 100 take 3m20s to publish, not less than --timeout 1m0s$`},
		{"no broker", []string{"bench", "--brokers", noBroker}, `^eventfx: no Kafka broker answered at ` + noBroker + ` \(.*\)$`},
		{"gateway without clients", []string{"bench", "gateway", "--clients", "0"}, `^eventfx: --clients must be at least 1, got 0$`},
		{"gateway without a bound", []string{"bench", "gateway", "--requests", "0", "--duration", "0"}, `set at least one bound$`},
		{"gateway with a bad URL", []string{"bench", "gateway", "--url", "localhost:8080"}, `^eventfx: --url must be an absolute http or https URL, got "localhost:8080"$`},
		{"gateway not answering", []string{"bench", "gateway", "--url", "http://" + noBroker, "--requests", "10"},
			`^eventfx: no answer from http://` + noBroker + `: .*connection refused$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			assert.Equal(t, 1, r.code, "%s", r)
			require.Len(t, lines(r.stderr), 1, "one line\n%s", r)
			assert.Regexp(t, tt.want, strings.TrimSpace(r.stderr))
		})
	}
}
