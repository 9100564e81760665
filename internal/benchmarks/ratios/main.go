// Command ratios summarises a run of the benchmarks in internal/benchmarks:
// the median msgs/s, cpu-µs/msg and (for the 1 ms handler) wait-ms/msg of
// every benchmark over the run's repetitions (go test -count), the range
// of msgs/s, the median req/s, p50-ms and p99-ms of the gateway
// benchmarks, and the ratios the performance issues set targets for, each
// computed from the medians.
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
	"cmp"
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
		fmt.Fprintln(os.Stderr, "ratios: no benchmark lines reporting msgs/s or req/s on stdin")
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

// ratio is a target: numerator benchmark over denominator benchmark, by
// their median of unit.
type ratio struct {
	name     string
	num, den string
	target   float64 // at least (at most, for a latency); 0: reported, no target
	// unit is the metric compared; empty: msgs/s.
	unit string
}

// Units of the ratios besides msgs/s: the gateway's rate, and its p99
// latency, of which less is better.
const (
	reqPerSec = "req/s"
	p99ms     = "p99-ms"
)

// atMost reports whether the ratio's target is a bound from above: a
// latency's.
func (r ratio) atMost() bool { return strings.HasSuffix(r.unit, "-ms") }

var ratios = []ratio{
	{"router: eventfx / bare Watermill router", "RouterOverhead/eventfx", "RouterOverhead/watermill", 0.90, ""},
	{"router: eventfx / bare router with eventfx's intake (the chain's cost)", "RouterOverhead/eventfx", "RouterOverhead/watermill-intake-per-core", 0, ""},
	{"consume: eventfx by partition / watermill-kafka", "KafkaConsume/eventfx", "KafkaConsume/watermill-kafka", 1.0, ""},
	{"consume: eventfx by partition / watermill-kafka with eventfx's intake", "KafkaConsume/eventfx", "KafkaConsume/watermill-kafka-intake-per-core", 0, ""},
	{"consume: eventfx by partition / raw franz-go", "KafkaConsume/eventfx", "KafkaConsume/franz-go", 0, ""},
	{"consume: eventfx by key / watermill-kafka", "KafkaConsume/eventfx-key", "KafkaConsume/watermill-kafka", 1.5, ""},
	{"consume, 1 ms handler: eventfx by key / watermill-kafka", "KafkaConsumeIO/eventfx-key", "KafkaConsumeIO/watermill-kafka", 20, ""},
	{"publish: eventfx batch / watermill-kafka sequential", "KafkaPublish/eventfx-batch", "KafkaPublish/watermill-kafka-sequential", 10, ""},
	{"publish: eventfx batch / raw franz-go", "KafkaPublish/eventfx-batch", "KafkaPublish/franz-go", 0.25, ""},
	{"batch handler / per-message handler, same resource", "BatchHandler/batch", "BatchHandler/per-message", 20, ""},
	{"gateway: eventfx / hand-written, 1 client", "Gateway/eventfx/clients=1", "Gateway/hand-written/clients=1", 0.90, reqPerSec},
	{"gateway: eventfx / hand-written, 16 clients", "Gateway/eventfx/clients=16", "Gateway/hand-written/clients=16", 0.90, reqPerSec},
	{"gateway: eventfx / hand-written, 64 clients", "Gateway/eventfx/clients=64", "Gateway/hand-written/clients=64", 0.90, reqPerSec},
	{"gateway p99 latency: eventfx / hand-written, 64 clients", "Gateway/eventfx/clients=64", "Gateway/hand-written/clients=64", 1.0, p99ms},
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
	var gateways []string
	for _, name := range names {
		if len(runs[name][reqPerSec]) > 0 {
			gateways = append(gateways, name)
		}
	}
	if len(gateways) > 0 {
		if len(messages) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%-52s %5s %12s %22s %10s %10s %10s\n", "benchmark", "runs", "req/s", "range", "p50-ms", "p99-ms", "cpu-µs/req")
		for _, name := range gateways {
			rate := runs[name][reqPerSec]
			fmt.Fprintf(w, "%-52s %5d %12.0f %10.0f – %-9.0f %10s %10s %10s\n", name, len(rate), median(rate), slices.Min(rate), slices.Max(rate),
				medianOf(runs[name]["p50-ms"], 3), medianOf(runs[name][p99ms], 3), medianOf(runs[name]["cpu-µs/req"], 1))
		}
	}
	fmt.Fprintln(w)
	for _, r := range ratios {
		unit := cmp.Or(r.unit, "msgs/s")
		num, den := runs[r.num][unit], runs[r.den][unit]
		if len(num) == 0 || len(den) == 0 {
			continue
		}
		v := median(num) / median(den)
		verdict := ""
		if r.target > 0 {
			cmpOp, met := "≥", v >= r.target
			if r.atMost() {
				cmpOp, met = "≤", v <= r.target
			}
			verdict = fmt.Sprintf("target %s %.2f: met", cmpOp, r.target)
			if !met {
				verdict = fmt.Sprintf("target %s %.2f: NOT met", cmpOp, r.target)
			}
		}
		fmt.Fprintf(w, "%-72s %8.2f  %s\n", r.name, v, verdict)
	}
}
