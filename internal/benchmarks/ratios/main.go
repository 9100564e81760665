// Command ratios summarises a run of the benchmarks in internal/benchmarks:
// the median msgs/s, cpu-µs/msg and (for the 1 ms handler) wait-ms/msg of
// every benchmark over the run's repetitions (go test -count), the range
// of msgs/s, the median req/s, p50-ms and p99-ms of the gateway benchmarks,
// the median latencies of the benchmarks that report them (p50-ms, p90-ms,
// p99-ms, max-ms: BenchmarkLatencyAtRate), and the ratios
// the performance issues set targets for, each computed from the medians:
// a rate's ratio has a target it must reach at least, a latency's one it
// must stay at most.
//
//	go test -run '^$' -bench . -benchmem -benchtime 100000x -count 5 ./internal/benchmarks | tee bench.txt
//	go run ./internal/benchmarks/ratios < bench.txt
//
// On a shared machine one repetition of a benchmark may run 20 % faster or
// slower than the next; the median of several repetitions, interleaved as
// go test -count runs them, is the figure to compare.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	runs, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
	if len(runs) == 0 {
		fmt.Fprintln(os.Stderr, "ratios: no benchmark result lines on stdin")
		os.Exit(1)
	}
	report(os.Stdout, runs)
}

// samples are one benchmark's values of a metric, one per repetition.
type samples map[string][]float64 // metric unit -> values

// benchLine matches a result line: name, iterations, then value-unit pairs.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parse reads go test -bench output and returns every benchmark's samples
// by name (without the Benchmark prefix and the -GOMAXPROCS suffix).
func parse(r io.Reader) (map[string]samples, error) {
	runs := map[string]samples{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		fields := strings.Fields(m[2])
		if len(fields)%2 != 0 {
			continue
		}
		name := strings.TrimPrefix(m[1], "Benchmark")
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", name, fields[i], err)
			}
			if runs[name] == nil {
				runs[name] = samples{}
			}
			runs[name][fields[i+1]] = append(runs[name][fields[i+1]], v)
		}
	}
	return runs, sc.Err()
}

// median of xs, which must not be empty.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf formats the median of xs with prec decimals, "-" when xs is
// empty (a benchmark that does not report the metric).
func medianOf(xs []float64, prec int) string {
	if len(xs) == 0 {
		return "-"
	}
	return strconv.FormatFloat(median(xs), 'f', prec, 64)
}

// ratio is numerator benchmark over denominator benchmark, by their
// median of metric (msgs/s when empty), with a target or none. Without a
// denominator, metric is a ratio the benchmark reports itself (one per
// repetition, of contenders run in turns), and its median is the ratio.
type ratio struct {
	name     string
	num, den string
	metric   string
	target   target
}

// target bounds a ratio: at least value (a rate), or at most value when
// atMost (a latency). The zero target is none: the ratio is reported.
type target struct {
	value  float64
	atMost bool
}

func atLeast(v float64) target { return target{value: v} }
func atMost(v float64) target  { return target{value: v, atMost: true} }

var none target

// verdict is "target ≥ 0.90: met", "target ≤ 2.00: NOT met", or "" for
// no target.
func (t target) verdict(v float64) string {
	if t.value <= 0 {
		return ""
	}
	sign, met := "≥", v >= t.value
	if t.atMost {
		sign, met = "≤", v <= t.value
	}
	if met {
		return fmt.Sprintf("target %s %.2f: met", sign, t.value)
	}
	return fmt.Sprintf("target %s %.2f: NOT met", sign, t.value)
}

var ratios = []ratio{
	{"router: eventfx / bare Watermill router", "RouterOverhead/eventfx", "RouterOverhead/watermill", "", atLeast(0.90)},
	{"router: eventfx / bare router with eventfx's intake (the chain's cost)", "RouterOverhead/eventfx", "RouterOverhead/watermill-intake-per-core", "", none},
	{"consume: eventfx by partition / watermill-kafka", "KafkaConsume/eventfx", "KafkaConsume/watermill-kafka", "", atLeast(1.0)},
	{"consume: eventfx by partition / watermill-kafka with eventfx's intake", "KafkaConsume/eventfx", "KafkaConsume/watermill-kafka-intake-per-core", "", none},
	{"consume: eventfx by partition / raw franz-go", "KafkaConsume/eventfx", "KafkaConsume/franz-go", "", none},
	{"consume: eventfx by key / watermill-kafka", "KafkaConsume/eventfx-key", "KafkaConsume/watermill-kafka", "", atLeast(1.5)},
	{"consume: typed Avro handler by key / raw handler by key", "KafkaConsume/eventfx-key-avro", "KafkaConsume/eventfx-key", "", atLeast(0.90)},
	{"consume: typed JSON handler by key / raw handler by key", "KafkaConsume/eventfx-key-json", "KafkaConsume/eventfx-key", "", none},
	{"consume, 1 ms handler: eventfx by key / watermill-kafka", "KafkaConsumeIO/eventfx-key", "KafkaConsumeIO/watermill-kafka", "", atLeast(20)},
	{"publish: eventfx batch / watermill-kafka sequential", "KafkaPublish/eventfx-batch", "KafkaPublish/watermill-kafka-sequential", "", atLeast(10)},
	{"publish: eventfx batch / raw franz-go", "KafkaPublish/eventfx-batch", "KafkaPublish/franz-go", "", atLeast(0.25)},
	{"consume, 1 ms handler: eventfx by key / its limit (max_in_flight / wait)", "KafkaConsumeIO/eventfx-key", "KafkaConsumeIO/eventfx-key", "limit", atLeast(0.85)},
	{"batch handler / per-message handler, same resource", "BatchHandler/batch", "BatchHandler/per-message", "", atLeast(20)},
	{"gateway: eventfx / hand-written, 1 client", "Gateway/clients=1", "", "ratio-req/s", atLeast(0.90)},
	{"gateway: eventfx / hand-written, 16 clients", "Gateway/clients=16", "", "ratio-req/s", atLeast(0.90)},
	{"gateway: eventfx / hand-written, 64 clients", "Gateway/clients=64", "", "ratio-req/s", atLeast(0.90)},
	{"gateway p99 latency: eventfx / hand-written, 64 clients", "Gateway/clients=64", "", "ratio-p99", atMost(1.0)},
	{"latency p99: eventfx by partition / franz-go at 1000/s", "LatencyAtRate/eventfx/rate=1000", "LatencyAtRate/franz-go/rate=1000", "p99-ms", atMost(2.0)},
	{"latency p99: eventfx by partition / franz-go at 10000/s", "LatencyAtRate/eventfx/rate=10000", "LatencyAtRate/franz-go/rate=10000", "p99-ms", atMost(2.0)},
	{"latency p99: eventfx by key / franz-go at 1000/s", "LatencyAtRate/eventfx-key/rate=1000", "LatencyAtRate/franz-go/rate=1000", "p99-ms", atMost(2.0)},
	{"latency p99: eventfx by key / franz-go at 10000/s", "LatencyAtRate/eventfx-key/rate=10000", "LatencyAtRate/franz-go/rate=10000", "p99-ms", atMost(2.0)},
}

func report(w io.Writer, runs map[string]samples) {
	names := make([]string, 0, len(runs))
	for name := range runs {
		names = append(names, name)
	}
	slices.Sort(names)
	var messages []string
	for _, name := range names {
		if len(runs[name]["msgs/s"]) > 0 {
			messages = append(messages, name)
		}
	}
	if len(messages) > 0 {
		fmt.Fprintf(w, "%-52s %5s %12s %22s %10s %11s\n", "benchmark", "runs", "msgs/s", "range", "cpu-µs/msg", "wait-ms/msg")
	}
	for _, name := range messages {
		rate := runs[name]["msgs/s"]
		fmt.Fprintf(w, "%-52s %5d %12.0f %10.0f – %-9.0f %10s %11s\n", name, len(rate), median(rate), slices.Min(rate), slices.Max(rate),
			medianOf(runs[name]["cpu-µs/msg"], 2), medianOf(runs[name]["wait-ms/msg"], 3))
	}
	gatewayTable(w, names, runs)
	latencyTable(w, names, runs)
	fmt.Fprintln(w)
	for _, r := range ratios {
		metric := r.metric
		if metric == "" {
			metric = "msgs/s"
		}
		num, den := runs[r.num][metric], runs[r.den][metric]
		if metric == "limit" { // a rate over its own limit
			num, den = runs[r.num]["msgs/s"], runs[r.num]["limit-msgs/s"]
		}
		if r.den == "" && metric != "limit" { // the benchmark's own ratio
			den = []float64{1}
		}
		if len(num) == 0 || len(den) == 0 {
			continue
		}
		v := median(num) / median(den)
		fmt.Fprintf(w, "%-72s %8.2f  %s\n", r.name, v, r.target.verdict(v))
	}
}

// gatewayTable prints the median req/s, its range, and the median p50
// and p99 of the gateway benchmarks; nothing when there are none. A
// benchmark that runs several gateways in turns reports each one's
// metrics under its name (eventfx-req/s, hand-written-p99-ms): a row each.
func gatewayTable(w io.Writer, names []string, runs map[string]samples) {
	header := false
	for _, name := range names {
		for _, gw := range gateways(runs[name]) {
			rate := runs[name][gw+"req/s"]
			if !header {
				fmt.Fprintf(w, "\n%-52s %5s %12s %22s %10s %10s %10s\n", "benchmark", "runs", "req/s", "range", "p50-ms", "p99-ms", "cpu-µs/req")
				header = true
			}
			label := name
			if gw != "" {
				label += " " + strings.TrimSuffix(gw, "-")
			}
			fmt.Fprintf(w, "%-52s %5d %12.0f %10.0f – %-9.0f %10s %10s %10s\n", label, len(rate), median(rate), slices.Min(rate), slices.Max(rate),
				medianOf(runs[name][gw+"p50-ms"], 3), medianOf(runs[name][gw+"p99-ms"], 3), medianOf(runs[name][gw+"cpu-µs/req"], 1))
		}
	}
}

// gateways are the prefixes of s's req/s metrics ("" for req/s itself,
// "eventfx-" for eventfx-req/s), sorted.
func gateways(s samples) []string {
	var out []string
	for unit, v := range s {
		if prefix, ok := strings.CutSuffix(unit, "req/s"); ok && len(v) > 0 && !strings.HasPrefix(prefix, "ratio") {
			out = append(out, prefix)
		}
	}
	slices.Sort(out)
	return out
}

// latencyTable prints the median latencies of the benchmarks reporting
// p99-ms (but the gateway's, in gatewayTable), and the range of their
// p99; nothing when none does.
func latencyTable(w io.Writer, names []string, runs map[string]samples) {
	header := false
	for _, name := range names {
		p99 := runs[name]["p99-ms"]
		if len(p99) == 0 || len(gateways(runs[name])) > 0 {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\n%-52s %5s %9s %9s %9s %20s %9s\n", "latency, ms (medians)", "runs", "p50", "p90", "p99", "p99 range", "max")
			header = true
		}
		fmt.Fprintf(w, "%-52s %5d %9s %9s %9s %9.3f – %-8.3f %9s\n", name, len(p99),
			medianOf(runs[name]["p50-ms"], 3), medianOf(runs[name]["p90-ms"], 3), medianOf(p99, 3),
			slices.Min(p99), slices.Max(p99), medianOf(runs[name]["max-ms"], 3))
	}
}
