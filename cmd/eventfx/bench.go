package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	o := bench.Defaults()
	json := false
	cmd := &cobra.Command{
		Use:   "bench [--brokers B] [--messages N] [--rate N] [--size BYTES] [--batch N] [--partitions N] [--keys N] [--json]",
		Short: "Measure eventfx publishing and consuming on a cluster (default: an embedded broker)",
		Long: `Builds an eventfx service from its real modules (app.Core, KafkaModule,
PublisherModule, SubscriberModule) with one handler, publishes --messages
messages of --size bytes with (*app.Publisher).PublishMessages, --batch per
call, and consumes them through the full middleware chain (correlation ID,
metrics, poison queue, retry, timeout, recoverer) in a fresh consumer group.
Each message carries its send time; the handler records the end-to-end
latency, from the PublishMessages call to the handler.

--rate N paces the publishing at N messages per second, the latency a
service sees at an ordinary load rather than under a saturating one:
message i is due i/N seconds after the first; the pacer sleeps until the
next is due, then publishes every message due by then (at most --batch)
in one PublishMessages call, without waiting for the acknowledgements of
earlier calls (an open loop). --messages bounds the run: it lasts about
--messages/N seconds, which must be less than --timeout.

Brokers: --brokers, else kafka.brokers from --config/EVENTFX_*, else (or
with --brokers embedded) an embedded broker started in this process, so
the numbers measure eventfx and the broker on this machine together. The
other kafka.* settings (acks, consume mode, TLS, SASL, timeouts) come from
the config; --acks overrides kafka.acks.

Topic: a fresh eventfx.bench.<random> created with --partitions partitions,
or --topic (created if missing; an existing topic keeps its partitions and
its earlier records are read and skipped). The topic is left on the cluster
afterwards: delete it with your Kafka tools. The service is closed at the
end, its consumer group left behind too.

While it runs, a progress line goes to stderr every second (rewritten in
place on a terminal). Then it prints (MB are 10^6 bytes of payload):
  config brokers=… embedded=… topic=… partitions=… messages=… size=… batch=… keys=… acks=… consume=…
  publish messages=… seconds=… msg_per_sec=… mb_per_sec=…
  consume messages=… duplicates=… seconds=… msg_per_sec=…
  latency p50=… p90=… p99=… max=…
publish: from the first PublishMessages call until the last returned
(acknowledged by the broker); consume: from the first call until the last
message was handled. With --rate, a line after config says what rate the
run offered:
  rate requested=… achieved=… max_behind=…
achieved: the messages over the time from the first send to one interval
(1/N) after the last, N when every call started on time; max_behind: the
latest a call started after its first message was due (latencies are
from each call's start, so a pacer that falls behind does not show in
them: compare achieved with requested). --json prints the same as one
JSON object (latencies in milliseconds; "rate" only with --rate).

It stops by itself after --timeout (exit code 1, saying how many messages
were consumed), or on Ctrl-C.`,
		Example: `  eventfx bench
  eventfx bench --messages 1000000 --size 1024 --keys 100
  eventfx bench --rate 1000 --messages 30000 --keys 1000
  eventfx bench --brokers kafka-1:9092,kafka-2:9092 --partitions 24 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if cmd.Flags().Changed("rate") && o.Rate == 0 {
				errs = append(errs, bench.RateError(o.Rate)) // 0 is unpaced only when --rate is not given
			}
			if err := o.Validate(); err != nil {
				errs = append(errs, err)
			}
			if err := bench.JoinOneLine(errs); err != nil {
				return err
			}
			brokers, cfg, err := g.benchBrokers()
			if err != nil {
				return err
			}
			o.Brokers, o.Config = brokers, cfg
			res, err := bench.Run(cmd.Context(), o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			return printBench(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Messages, "messages", o.Messages, "messages to publish and consume")
	f.IntVar(&o.Rate, "rate", 0, "publish at this many messages per second (default: as fast as the acknowledgements allow)")
	f.IntVar(&o.Size, "size", o.Size, "payload size in bytes")
	f.IntVar(&o.Batch, "batch", o.Batch, "messages per PublishMessages call")
	f.IntVar(&o.Partitions, "partitions", o.Partitions, "partitions of the topic bench creates")
	f.StringVar(&o.Topic, "topic", "", "topic to use (default: a new eventfx.bench.<random>)")
	f.IntVar(&o.Keys, "keys", 0, "distinct partition keys, used in turn (0: unkeyed)")
	f.StringVar(&o.Acks, "acks", "", "all or leader (default: kafka.acks from the config, else all)")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up after this long, setup included")
	f.BoolVar(&json, "json", false, "print the result as one JSON object")
	cmd.AddCommand(newBenchGatewayCmd(g))
	return cmd
}

// benchBrokers resolves the brokers of bench: --brokers, else the config's
// (file or environment), else none: an embedded broker.
func (g *globals) benchBrokers() (brokers []string, cfg config.Config, err error) {
	cfg, err = config.Load(g.configPath)
	if err != nil {
		return nil, cfg, err
	}
	cfg = cfg.WithDefaults()
	brokers = cfg.Kafka.Brokers
	if len(g.brokers) > 0 {
		brokers = g.brokers
	}
	if len(brokers) == 0 || (len(brokers) == 1 && brokers[0] == config.Embedded) {
		return nil, cfg, nil
	}
	return brokers, cfg, nil
}

// printBench prints a run's result, a line each for its setup, its rate
// (paced runs only), publish, consume and latency.
func printBench(w io.Writer, r bench.Result) error {
	lat := r.Summary
	c := r.Config
	lines := []*line{
		new(line).word("config").kv("brokers", strings.Join(c.Brokers, ",")).kv("embedded", strconv.FormatBool(c.Embedded)).
			kv("topic", c.Topic).kv("partitions", strconv.Itoa(c.Partitions)).kv("messages", strconv.Itoa(c.Messages)).
			kv("size", strconv.Itoa(c.Size)).kv("batch", strconv.Itoa(c.Batch)).kv("keys", strconv.Itoa(c.Keys)).
			kv("acks", c.Acks).kv("consume", c.Consume),
	}
	if rt := r.Rate; rt != nil {
		lines = append(lines, new(line).word("rate").kv("requested", strconv.Itoa(rt.Requested)).
			kv("achieved", fmt.Sprintf("%.1f", rt.Achieved)).kv("max_behind", fmtDur(rt.MaxBehind)))
	}
	lines = append(lines,
		new(line).word("publish").kv("messages", strconv.Itoa(r.Publish.Messages)).kv("seconds", fmt.Sprintf("%.3f", r.Publish.Seconds)).
			kv("msg_per_sec", fmt.Sprintf("%.0f", r.Publish.MsgPerSec)).kv("mb_per_sec", fmt.Sprintf("%.2f", r.Publish.MBPerSec)),
		new(line).word("consume").kv("messages", strconv.Itoa(r.Consume.Messages)).kv("duplicates", strconv.Itoa(r.Consume.Duplicates)).
			kv("seconds", fmt.Sprintf("%.3f", r.Consume.Seconds)).kv("msg_per_sec", fmt.Sprintf("%.0f", r.Consume.MsgPerSec)),
		new(line).word("latency").kv("p50", fmtDur(lat.P50)).kv("p90", fmtDur(lat.P90)).kv("p99", fmtDur(lat.P99)).kv("max", fmtDur(lat.Max)),
	)
	for _, l := range lines {
		if err := l.writeTo(w); err != nil {
			return err
		}
	}
	return nil
}

// fmtDur rounds d for reading: microseconds below 100ms, else milliseconds.
func fmtDur(d time.Duration) string {
	if d < 100*time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
