package main_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// loadLevel is one line of `eventfx bench gateway --json`.
type loadLevel struct {
	Clients        int            `json:"clients"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status"`
	ReqPerSec      float64        `json:"req_per_sec"`
	Latency        struct {
		P50, P90, P99, Max float64
	} `json:"latency_ms"`
}

// benchGateway runs `eventfx bench gateway` against g with args and
// returns its output and exit code.
func benchGateway(t *testing.T, g gateway, args ...string) (string, int) {
	t.Helper()
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	return proctest.Run(t, 60*time.Second, nil, nil, bin, append([]string{"bench", "gateway", "--url", g.url}, args...)...)
}

func TestGatewayUnderLoadAcceptsAndWritesEveryEvent(t *testing.T) {
	t.Parallel()
	_, broker := proctest.Broker(t, "")
	g := startGateway(t, broker, nil)
	topic := kafkatest.Unique("load")

	out, code := benchGateway(t, g, "--topic", topic, "--clients", "1,16,64", "--requests", "500", "--duration", "0", "--size", "100", "--json")

	require.Equal(t, 0, code, out)
	var levels []loadLevel
	for _, l := range proctest.Lines(out) {
		var lv loadLevel
		require.NoError(t, json.Unmarshal([]byte(l), &lv), "not a JSON level: %s\noutput:\n%s", l, out)
		levels = append(levels, lv)
	}
	require.Len(t, levels, 3, out)
	for i, clients := range []int{1, 16, 64} {
		lv := levels[i]
		assert.Equal(t, clients, lv.Clients)
		assert.Equal(t, 500, lv.Requests, "%d clients", clients)
		assert.Zero(t, lv.Errors, "%d clients: errors %v", clients, lv.ErrorsByStatus)
		assert.Empty(t, lv.ErrorsByStatus)
		assert.Positive(t, lv.ReqPerSec)
		assert.LessOrEqual(t, lv.Latency.P50, lv.Latency.P99, "%d clients", clients)
		assert.LessOrEqual(t, lv.Latency.P99, lv.Latency.Max, "%d clients", clients)
	}

	// Every 202 is an event on Kafka, each with its own ID.
	recs := kafkatest.Read(t, broker, topic, 1500, 20*time.Second)
	ids := map[string]bool{}
	for _, r := range recs {
		ids[kafkatest.Headers(r)["_watermill_message_uuid"]] = true
		assert.Len(t, r.Value, 100, "payload of --size bytes")
	}
	assert.Len(t, ids, 1500, "distinct event IDs")
	assert.Equal(t, int64(1500), kafkatest.Count(t, broker, topic), "no more events than accepted requests")

	g.proc.Stop(20 * time.Second)
}

func TestGatewayLoadWithAuthToken(t *testing.T) {
	t.Parallel()
	_, broker := proctest.Broker(t, "")
	g := startGateway(t, broker, proctest.Env("EVENTFX_HTTP_AUTH_TOKEN", "load-s3cret"))
	topic := kafkatest.Unique("load-auth")

	out, code := benchGateway(t, g, "--topic", topic, "--clients", "4", "--requests", "100", "--token", "load-s3cret")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `(?m)^clients=4 requests=100 errors=0 seconds=\S+ req_per_sec=\d+ p50=\S+ p90=\S+ p99=\S+ max=\S+$`, out)

	out, code = benchGateway(t, g, "--topic", topic, "--clients", "4", "--requests", "20", "--token", "wrong")
	assert.Equal(t, 1, code, out)
	assert.Regexp(t, `(?m)^clients=4 requests=20 errors=20 errors_401=20 `, out)
	assert.Contains(t, out, "eventfx: every request failed at 4 clients: 401 × 20 (first: 401 Unauthorized: ")
	assert.NotContains(t, out, "load-s3cret", "the token is never printed")

	assert.Equal(t, int64(100), kafkatest.Count(t, broker, topic), "only the authorised requests published")
	res, err := http.Get(g.url + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	assert.True(t, strings.HasPrefix(res.Status, "200"), "the gateway is still alive: %s", res.Status)
}

// TestBenchGatewayWorksWithTheExampleConfig: the README's pair, the
// example publisher.yaml and `eventfx bench gateway` with its defaults.
func TestBenchGatewayWorksWithTheExampleConfig(t *testing.T) {
	t.Parallel()
	_, broker := proctest.Broker(t, "")
	g := startGateway(t, broker, nil, "--config", "../../examples/config/publisher.yaml")
	out, code := benchGateway(t, g, "--clients", "4", "--requests", "200", "--duration", "0", "--json")
	require.Equal(t, 0, code, out)
	var lv loadLevel
	require.NoError(t, json.Unmarshal([]byte(proctest.Lines(out)[0]), &lv), out)
	assert.Zero(t, lv.Errors, "errors %v", lv.ErrorsByStatus)
	assert.Equal(t, int64(200), kafkatest.Count(t, broker, "eventfx.bench.gateway"))
}
