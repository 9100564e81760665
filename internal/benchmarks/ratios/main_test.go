package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const output = `goos: linux
BenchmarkRouterOverhead/watermill-2         	  100000	      3859 ns/op	         5.000 cpu-µs/msg	    200000 msgs/s	    1184 B/op	      19 allocs/op
BenchmarkRouterOverhead/eventfx-2           	  100000	      3859 ns/op	         6.000 cpu-µs/msg	    190000 msgs/s	    1330 B/op	      20 allocs/op
BenchmarkRouterOverhead/watermill-2         	  100000	      3859 ns/op	         5.000 cpu-µs/msg	    100000 msgs/s	    1184 B/op	      19 allocs/op
BenchmarkRouterOverhead/eventfx-2           	  100000	      3859 ns/op	         6.000 cpu-µs/msg	    170000 msgs/s	    1330 B/op	      20 allocs/op
BenchmarkRouterOverhead/watermill-2         	  100000	      3859 ns/op	         4.000 cpu-µs/msg	    210000 msgs/s	    1184 B/op	      19 allocs/op
BenchmarkRouterOverhead/eventfx-2           	  100000	      3859 ns/op	         7.000 cpu-µs/msg	    150000 msgs/s	    1330 B/op	      20 allocs/op
BenchmarkKafkaConsumeIO/eventfx-key-2       	  100000	      8758 ns/op	         7.818 cpu-µs/msg	    127604 msgs/s	         1.774 wait-ms/msg	    3101 B/op	      27 allocs/op
BenchmarkKafkaPublish/franz-go-2            	  100000	       726 ns/op	   1000000 msgs/s	       7 B/op	       0 allocs/op
PASS
`

func TestParseKeepsEveryRepetition(t *testing.T) {
	runs, err := parse(strings.NewReader(output))
	require.NoError(t, err)
	assert.Equal(t, []float64{200000, 100000, 210000}, runs["RouterOverhead/watermill"]["msgs/s"])
	assert.Equal(t, []float64{5, 5, 4}, runs["RouterOverhead/watermill"]["cpu-µs/msg"])
	assert.Equal(t, []float64{1000000}, runs["KafkaPublish/franz-go"]["msgs/s"])
	assert.Equal(t, []float64{1.774}, runs["KafkaConsumeIO/eventfx-key"]["wait-ms/msg"])
	assert.Len(t, runs, 4)
}

func TestReportTakesRatiosOfMedians(t *testing.T) {
	runs, err := parse(strings.NewReader(output))
	require.NoError(t, err)
	var b strings.Builder
	report(&b, runs)
	out := b.String()
	// Medians 200,000 and 170,000: 0.85, under the router's 0.90.
	assert.Contains(t, out, "router: eventfx / bare Watermill router")
	assert.Regexp(t, `eventfx / bare Watermill router\s+0\.85  target ≥ 0\.90: NOT met`, out)
	assert.Regexp(t, `RouterOverhead/eventfx\s+3\s+170000\s+150000 – 190000\s+6\.00\s+-\n`, out)
	assert.Regexp(t, `KafkaConsumeIO/eventfx-key\s+1\s+127604\s+127604 – 127604\s+7\.82\s+1\.774\n`, out)
	// Ratios whose benchmarks are missing are left out.
	assert.NotContains(t, out, "publish:")
}

func TestMedianOfEvenCount(t *testing.T) {
	assert.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
}

// latencyOutput is three repetitions of two latency benchmarks (ns/op is
// not reported).
const latencyOutput = `BenchmarkLatencyAtRate/franz-go/rate=1000-2         	       1	         3.638 max-ms	      1000 msgs/s	         0.1475 p50-ms	         0.2335 p90-ms	         0.5000 p99-ms
BenchmarkLatencyAtRate/franz-go/rate=1000-2         	       1	         3.000 max-ms	      1000 msgs/s	         0.1500 p50-ms	         0.2400 p90-ms	         0.4000 p99-ms
BenchmarkLatencyAtRate/franz-go/rate=1000-2         	       1	         4.000 max-ms	       999 msgs/s	         0.1400 p50-ms	         0.2300 p90-ms	         0.6000 p99-ms
BenchmarkLatencyAtRate/eventfx/rate=1000-2          	       1	         2.946 max-ms	      1000 msgs/s	         0.1669 p50-ms	         0.2529 p90-ms	         0.9000 p99-ms
BenchmarkLatencyAtRate/eventfx/rate=1000-2          	       1	         2.000 max-ms	      1000 msgs/s	         0.1700 p50-ms	         0.2600 p90-ms	         1.1000 p99-ms
BenchmarkLatencyAtRate/eventfx/rate=1000-2          	       1	         5.000 max-ms	      1000 msgs/s	         0.1600 p50-ms	         0.2500 p90-ms	         3.0000 p99-ms
BenchmarkLatencyAtRate/eventfx-key/rate=1000-2      	       1	         2.508 max-ms	      1000 msgs/s	         0.2284 p50-ms	         0.4383 p90-ms	         0.9000 p99-ms
PASS
`

func TestLatencyRatiosAreAtMostTargets(t *testing.T) {
	runs, err := parse(strings.NewReader(latencyOutput))
	require.NoError(t, err)
	assert.Equal(t, []float64{0.5, 0.4, 0.6}, runs["LatencyAtRate/franz-go/rate=1000"]["p99-ms"])
	var b strings.Builder
	report(&b, runs)
	out := b.String()
	// Medians 1.1 and 0.5: 2.2, over the 2.0 a latency must stay under.
	assert.Regexp(t, `latency p99: eventfx by partition / franz-go at 1000/s\s+2\.20  target ≤ 2\.00: NOT met\n`, out)
	// By key, one repetition of 0.9 over 0.5: 1.8, under it.
	assert.Regexp(t, `latency p99: eventfx by key / franz-go at 1000/s\s+1\.80  target ≤ 2\.00: met\n`, out)
	assert.NotContains(t, out, "10000/s", "no figures, no ratio")
	// The latency table: medians, and the range of p99.
	assert.Regexp(t, `LatencyAtRate/eventfx/rate=1000\s+3\s+0\.167\s+0\.253\s+1\.100\s+0\.900 – 3\.000\s+2\.946\n`, out)
	assert.Regexp(t, `LatencyAtRate/franz-go/rate=1000\s+3\s+1000\s+999 – 1000`, out, "and the achieved rate in the rates' table")
}

func TestTargetVerdicts(t *testing.T) {
	assert.Equal(t, "target ≥ 0.90: met", atLeast(0.9).verdict(0.9))
	assert.Equal(t, "target ≥ 0.90: NOT met", atLeast(0.9).verdict(0.89))
	assert.Equal(t, "target ≤ 2.00: met", atMost(2).verdict(2))
	assert.Equal(t, "target ≤ 2.00: NOT met", atMost(2).verdict(2.01))
	assert.Empty(t, none.verdict(5))
}

func TestReportWithoutLatenciesHasNoLatencyTable(t *testing.T) {
	runs, err := parse(strings.NewReader(output))
	require.NoError(t, err)
	var b strings.Builder
	report(&b, runs)
	assert.NotContains(t, b.String(), "latency")
}

const gatewayOutput = `BenchmarkGateway/clients=1-2         	  200000	     18530 ns/op	      5400 eventfx-req/s	         0.1239 eventfx-p50-ms	         0.6472 eventfx-p99-ms	        60.00 eventfx-cpu-µs/req	      6000 hand-written-req/s	         0.0835 hand-written-p50-ms	         0.4383 hand-written-p99-ms	        50.00 hand-written-cpu-µs/req	         0.9000 ratio-req/s	         1.477 ratio-p99
BenchmarkGateway/clients=1-2         	  200000	     18530 ns/op	      5000 eventfx-req/s	         0.1300 eventfx-p50-ms	         0.7000 eventfx-p99-ms	        61.00 eventfx-cpu-µs/req	      5500 hand-written-req/s	         0.0900 hand-written-p50-ms	         0.5000 hand-written-p99-ms	        51.00 hand-written-cpu-µs/req	         0.9091 ratio-req/s	         1.400 ratio-p99
BenchmarkGateway/clients=1-2         	  200000	     18530 ns/op	      5800 eventfx-req/s	         0.1100 eventfx-p50-ms	         0.6000 eventfx-p99-ms	        59.00 eventfx-cpu-µs/req	      6800 hand-written-req/s	         0.0800 hand-written-p50-ms	         0.4000 hand-written-p99-ms	        49.00 hand-written-cpu-µs/req	         0.8529 ratio-req/s	         1.500 ratio-p99
BenchmarkGateway/clients=64-2        	  200000	      4548 ns/op	     30000 eventfx-req/s	         2.671 eventfx-p50-ms	         7.045 eventfx-p99-ms	        55.00 eventfx-cpu-µs/req	     32000 hand-written-req/s	         1.737 hand-written-p50-ms	         5.407 hand-written-p99-ms	        12.50 hand-written-cpu-µs/req	         0.9375 ratio-req/s	         1.303 ratio-p99
`

func TestReportComparesTheGatewaysByRequestsAndP99(t *testing.T) {
	runs, err := parse(strings.NewReader(gatewayOutput))
	require.NoError(t, err)
	assert.Equal(t, []float64{5400, 5000, 5800}, runs["Gateway/clients=1"]["eventfx-req/s"])
	var b strings.Builder
	report(&b, runs)
	out := b.String()
	assert.Regexp(t, `Gateway/clients=1 eventfx\s+3\s+5400\s+5000 – 5800\s+0\.124\s+0\.647\s+60\.0\n`, out)
	assert.Regexp(t, `Gateway/clients=64 hand-written\s+1\s+32000\s+32000 – 32000\s+1\.737\s+5\.407\s+12\.5\n`, out)
	// The median of the runs' own ratios (0.90, 0.909, 0.853), not the
	// ratio of the medians: the rounds of one run took turns.
	assert.Regexp(t, `gateway: eventfx / hand-written, 1 client\s+0\.90  target ≥ 0\.90: met`, out)
	assert.Regexp(t, `gateway: eventfx / hand-written, 64 clients\s+0\.94  target ≥ 0\.90: met`, out)
	// A latency's target is a bound from above.
	assert.Regexp(t, `gateway p99 latency: eventfx / hand-written, 64 clients\s+1\.30  target ≤ 1\.00: NOT met`, out)
	// No 16-client runs: left out.
	assert.NotContains(t, out, "16 clients")
	// The gateways report no msgs/s: no messages' table, and no latency table.
	assert.NotContains(t, out, "msgs/s")
	assert.NotContains(t, out, "latency, ms")
}

func TestKeyModeIsComparedWithItsOwnLimit(t *testing.T) {
	runs, err := parse(strings.NewReader("BenchmarkKafkaConsumeIO/eventfx-key-2 \t 100000 \t 9039 ns/op \t 8.066 cpu-µs/msg \t 158679 limit-msgs/s \t 125079 msgs/s \t 1.613 wait-ms/msg\n"))
	require.NoError(t, err)
	var b strings.Builder
	report(&b, runs)
	// 125,079 of its limit of 158,679: 0.79.
	assert.Regexp(t, `eventfx by key / its limit \(max_in_flight / wait\)\s+0\.79  target ≥ 0\.85: NOT met`, b.String())
}
