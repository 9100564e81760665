package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
)

var (
	compareConfigLine = regexp.MustCompile(`^config mode=compare brokers=(\S+) embedded=false eventfx_topic=(\S+) hand_written_topic=(\S+) size=64 requests=200 duration=0s rounds=10 auth=true$`)
	compareRow        = regexp.MustCompile(`^clients=(\d+) gateway=(eventfx|hand-written) requests=200 errors=0 seconds=(\S+) req_per_sec=(\d+) p50=(\S+) p90=(\S+) p99=(\S+) max=(\S+)$`)
	compareRatioLine  = regexp.MustCompile(`^clients=(\d+) ratio req_per_sec=(\S+) p50=(\S+) p99=(\S+)$`)
)

func TestBenchGatewayCompareMeasuresBothGatewaysAtEachLevel(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	topic := kafkatest.Unique("compare")

	r := ok(t, nil, "bench", "gateway", "--compare", "--brokers", addr, "--topic", topic,
		"--clients", "1,8", "--requests", "200", "--duration", "0", "--size", "64")

	out := lines(r.stdout)
	require.Len(t, out, 7, "config, then per level a line per gateway and a ratio\n%s", r)
	m := compareConfigLine.FindStringSubmatch(out[0])
	require.NotNil(t, m, "config line: %q", out[0])
	assert.Equal(t, addr, m[1])
	assert.Equal(t, topic+".eventfx", m[2])
	assert.Equal(t, topic+".hand-written", m[3])
	for i, clients := range []string{"1", "8"} {
		level := out[1+3*i : 4+3*i]
		for j, name := range []string{"eventfx", "hand-written"} {
			row := compareRow.FindStringSubmatch(level[j])
			require.NotNil(t, row, "%s row at %s clients: %q", name, clients, level[j])
			assert.Equal(t, clients, row[1])
			assert.Equal(t, name, row[2])
			assert.Positive(t, number(t, row[3]), "seconds: %q", level[j])
			assert.Positive(t, number(t, row[4]), "req_per_sec: %q", level[j])
			for _, v := range row[5:] {
				assert.Regexp(t, `^[0-9.]+(ns|µs|ms|s)$`, v, "a duration: %q", level[j])
			}
		}
		ratio := compareRatioLine.FindStringSubmatch(level[2])
		require.NotNil(t, ratio, "ratio line at %s clients: %q", clients, level[2])
		assert.Equal(t, clients, ratio[1])
		for _, v := range ratio[2:] {
			assert.Positive(t, number(t, v), "ratio: %q", level[2])
		}
	}
	// Each gateway wrote its 400 events and the warm-up's 32 (4 per client
	// of the largest level) to its own topic.
	assert.Equal(t, int64(432), kafkatest.Count(t, addr, topic+".eventfx"))
	assert.Equal(t, int64(432), kafkatest.Count(t, addr, topic+".hand-written"))
}

// compareJSON is one level of `eventfx bench gateway --compare --json`.
type compareJSON struct {
	Clients     int            `json:"clients"`
	Eventfx     compareGateway `json:"eventfx"`
	HandWritten compareGateway `json:"hand_written"`
	Ratio       struct {
		ReqPerSec float64 `json:"req_per_sec"`
		P50       float64 `json:"p50"`
		P99       float64 `json:"p99"`
	} `json:"ratio"`
}

type compareGateway struct {
	URL            string         `json:"url"`
	Topic          string         `json:"topic"`
	Clients        int            `json:"clients"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status"`
	ReqPerSec      float64        `json:"req_per_sec"`
	Latency        struct {
		P50, P90, P99, Max float64
	} `json:"latency_ms"`
}

func TestBenchGatewayCompareOnTheEmbeddedBrokerPrintsJSON(t *testing.T) {
	t.Parallel()

	r := ok(t, nil, "bench", "gateway", "--compare", "--clients", "2,4", "--requests", "40", "--rounds", "2", "--json")

	out := lines(r.stdout)
	require.Len(t, out, 2, "one JSON object per level\n%s", r)
	for i, clients := range []int{2, 4} {
		var lv compareJSON
		require.NoError(t, json.Unmarshal([]byte(out[i]), &lv), "not a JSON level: %s", out[i])
		assert.Equal(t, clients, lv.Clients)
		for _, g := range []compareGateway{lv.Eventfx, lv.HandWritten} {
			assert.Equal(t, clients, g.Clients)
			assert.Equal(t, 40, g.Requests, "%d clients", clients)
			assert.Zero(t, g.Errors, "%d clients: errors %v", clients, g.ErrorsByStatus)
			assert.Empty(t, g.ErrorsByStatus)
			assert.True(t, strings.HasPrefix(g.URL, "http://127.0.0.1:"), "a gateway on loopback: %s", g.URL)
			assert.Positive(t, g.ReqPerSec)
			assert.Positive(t, g.Latency.P50)
			assert.LessOrEqual(t, g.Latency.P50, g.Latency.P99)
			assert.LessOrEqual(t, g.Latency.P99, g.Latency.Max)
		}
		assert.NotEqual(t, lv.Eventfx.URL, lv.HandWritten.URL, "two gateways")
		assert.Regexp(t, `^eventfx\.bench\.gateway\.[0-9a-f]+\.eventfx$`, lv.Eventfx.Topic)
		assert.Equal(t, strings.TrimSuffix(lv.Eventfx.Topic, ".eventfx")+".hand-written", lv.HandWritten.Topic)
		assert.Positive(t, lv.Ratio.ReqPerSec)
		assert.Positive(t, lv.Ratio.P50)
		assert.Positive(t, lv.Ratio.P99)
	}
}

func TestBenchGatewayCompareErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"with a URL", []string{"--compare", "--url", "http://127.0.0.1:8080"}, `^eventfx: --compare starts its own gateways: drop --url$`},
		{"no rounds", []string{"--compare", "--rounds", "0"}, `^eventfx: --rounds must be at least 1, got 0$`},
		{"fewer requests than rounds", []string{"--compare", "--requests", "3", "--rounds", "4"},
			`^eventfx: --requests 3 is fewer than --rounds 4: every round needs a request$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, append([]string{"bench", "gateway"}, tt.args...)...)
			assert.Equal(t, 1, r.code, "%s", r)
			require.Len(t, lines(r.stderr), 1, "one line\n%s", r)
			assert.Regexp(t, tt.want, strings.TrimSpace(r.stderr))
		})
	}
}
