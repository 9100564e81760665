package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/loadgen"
	"github.com/eventfx/eventfx/internal/poison"
)

// Headers of the messages `eventfx bench` publishes.
const (
	// benchRunHeader is the run's ID: the handler skips records of other
	// runs (an existing --topic).
	benchRunHeader = "eventfx_bench_run"
	// benchSeqHeader numbers the messages 0..N-1; "warmup" marks the
	// message sent before the clock starts.
	benchSeqHeader = "eventfx_bench_seq"
	// benchSentHeader is the send time, Unix nanoseconds.
	benchSentHeader = "eventfx_bench_sent"
	benchWarmup     = "warmup"
	// benchHandler is the bench handler's name (its consumer group's suffix).
	benchHandler = "bench"
)

type benchOpts struct {
	messages, size, batch, partitions, keys int
	topic, acks                             string
	timeout                                 time.Duration
	json                                    bool
}

func newBenchCmd(g *globals) *cobra.Command {
	o := benchOpts{messages: 100000, size: 256, batch: 1000, partitions: broker.DefaultPartitions, timeout: 2 * time.Minute}
	cmd := &cobra.Command{
		Use:   "bench [--brokers B] [--messages N] [--size BYTES] [--batch N] [--partitions N] [--keys N] [--json]",
		Short: "Measure eventfx publishing and consuming on a cluster (default: an embedded broker)",
		Long: `Builds an eventfx service from its real modules (app.Core, KafkaModule,
PublisherModule, SubscriberModule) with one handler, publishes --messages
messages of --size bytes with (*app.Publisher).PublishMessages, --batch per
call, and consumes them through the full middleware chain (correlation ID,
metrics, poison queue, retry, timeout, recoverer) in a fresh consumer group.
Each message carries its send time; the handler records the end-to-end
latency, from the PublishMessages call to the handler.

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
message was handled. --json prints the same as one JSON object (latencies
in milliseconds).

It stops by itself after --timeout (exit code 1, saying how many messages
were consumed), or on Ctrl-C.`,
		Example: `  eventfx bench
  eventfx bench --messages 1000000 --size 1024 --keys 100
  eventfx bench --brokers kafka-1:9092,kafka-2:9092 --partitions 24 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), g, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.messages, "messages", o.messages, "messages to publish and consume")
	f.IntVar(&o.size, "size", o.size, "payload size in bytes")
	f.IntVar(&o.batch, "batch", o.batch, "messages per PublishMessages call")
	f.IntVar(&o.partitions, "partitions", o.partitions, "partitions of the topic bench creates")
	f.StringVar(&o.topic, "topic", "", "topic to use (default: a new eventfx.bench.<random>)")
	f.IntVar(&o.keys, "keys", 0, "distinct partition keys, used in turn (0: unkeyed)")
	f.StringVar(&o.acks, "acks", "", "all or leader (default: kafka.acks from the config, else all)")
	f.DurationVar(&o.timeout, "timeout", o.timeout, "give up after this long, setup included")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	cmd.AddCommand(newBenchGatewayCmd(g))
	return cmd
}

func (o benchOpts) validate() error {
	var errs []error
	for _, x := range []struct {
		flag     string
		val, min int
	}{{"--messages", o.messages, 1}, {"--size", o.size, 1}, {"--batch", o.batch, 1}, {"--partitions", o.partitions, 1}, {"--keys", o.keys, 0}} {
		if x.val < x.min {
			errs = append(errs, fmt.Errorf("%s must be at least %d, got %d", x.flag, x.min, x.val))
		}
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout must be positive, got %s", o.timeout))
	}
	if o.topic != "" {
		if err := config.ValidTopicName(o.topic); err != nil {
			errs = append(errs, fmt.Errorf("--topic: %w", err))
		}
	}
	if o.acks != "" && o.acks != config.AcksAll && o.acks != config.AcksLeader {
		errs = append(errs, fmt.Errorf("--acks must be %s or %s, got %q", config.AcksAll, config.AcksLeader, o.acks))
	}
	return joinOneLine(errs)
}

// joinOneLine joins errors with "; ", keeping the CLI's errors on one line.
func joinOneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// benchBrokers resolves the brokers of bench: --brokers, else the config's
// (file or environment), else an embedded broker (embedded true).
func (g *globals) benchBrokers() (brokers []string, cfg config.Config, embedded bool, err error) {
	cfg, err = config.Load(g.configPath)
	if err != nil {
		return nil, cfg, false, err
	}
	cfg = cfg.WithDefaults()
	brokers = cfg.Kafka.Brokers
	if len(g.brokers) > 0 {
		brokers = g.brokers
	}
	if len(brokers) == 0 || (len(brokers) == 1 && brokers[0] == config.Embedded) {
		return nil, cfg, true, nil
	}
	return brokers, cfg, false, nil
}

// randomSuffix is 12 random hex digits.
func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// benchResult is what bench prints (--json: as is).
type benchResult struct {
	Config  benchConfig  `json:"config"`
	Publish benchPublish `json:"publish"`
	Consume benchConsume `json:"consume"`
	Latency benchLatency `json:"latency_ms"`
}

type benchConfig struct {
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
}

type benchPublish struct {
	Messages  int     `json:"messages"`
	Seconds   float64 `json:"seconds"`
	MsgPerSec float64 `json:"msg_per_sec"`
	MBPerSec  float64 `json:"mb_per_sec"`
}

type benchConsume struct {
	Messages   int     `json:"messages"`
	Duplicates int     `json:"duplicates"`
	Seconds    float64 `json:"seconds"`
	MsgPerSec  float64 `json:"msg_per_sec"`
}

type benchLatency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func (o benchOpts) run(parent context.Context, g *globals, out, status io.Writer) error {
	ctx, cancel := context.WithTimeout(parent, o.timeout)
	defer cancel()
	brokers, cfg, embedded, err := g.benchBrokers()
	if err != nil {
		return err
	}
	if embedded {
		b, err := broker.Start(broker.Config{Partitions: o.partitions})
		if err != nil {
			return err
		}
		defer b.Close() // after the service, deferred below
		brokers = []string{b.Addr()}
	}
	if o.topic == "" {
		o.topic = "eventfx.bench." + randomSuffix()
	}
	partitions, err := o.prepareTopic(ctx, brokers, cfg.Kafka)
	if err != nil {
		if !expired(ctx) {
			return err // "no Kafka broker answered at …", as every command says
		}
		return o.stageError(parent, ctx, "connecting to Kafka", err)
	}

	run := randomSuffix()
	cfg.Service = "eventfx-bench-" + run
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.ConsumerGroup = cfg.Service // a fresh group: "<service>.bench"
	cfg.Kafka.InitialOffset = config.OffsetOldest
	if o.acks != "" {
		cfg.Kafka.Acks = o.acks
	}
	if cfg.Observability.Log.Level != config.LogDebug {
		cfg.Observability.Log.Level = config.LogWarn // keep stderr for the progress line
	}
	rec := newBenchRecorder(run, o.messages)
	var pub *app.Publisher
	a := fx.New(
		app.Core(cfg),
		app.KafkaModule,
		app.PublisherModule,
		app.SubscriberModule,
		handlers.Register(handlers.New(benchHandler, o.topic, rec.handle)),
		fx.Populate(&pub),
	)
	if err := a.Err(); err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return o.stageError(parent, ctx, "starting the service", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(parent), cfg.ShutdownTimeout+15*time.Second)
		defer cancel()
		_ = a.Stop(stopCtx) // a failure to stop does not change the measurement
	}()

	res := benchResult{Config: benchConfig{
		Brokers: brokers, Embedded: embedded, Topic: o.topic, Partitions: partitions,
		Messages: o.messages, Size: o.size, Batch: o.batch, Keys: o.keys,
		Acks: cfg.Kafka.Acks, Consume: cfg.Kafka.Consume,
	}}
	where := strings.Join(brokers, ",")
	if embedded {
		where += " (embedded, in this process)"
	}
	fmt.Fprintf(status, "eventfx: bench: %d messages of %d B to %s (%d partitions) on %s\n", o.messages, o.size, o.topic, partitions, where)

	// Warm-up: one message through, so the clock starts with the consumer
	// group joined and the topic's metadata known.
	fmt.Fprintln(status, "eventfx: bench: waiting for the consumer group to join")
	payload := benchPayload(o.size)
	warm := make(chan error, 1)
	go func() {
		warm <- pub.PublishMessages(context.WithoutCancel(ctx), o.topic, rec.message(payload, benchWarmup, ""))
	}()
	select {
	case err := <-warm:
		if err != nil {
			return o.stageError(parent, ctx, "warming up", err)
		}
	case <-ctx.Done():
		awaitPublish(warm)
		return o.stageError(parent, ctx, "warming up", errors.New("the warm-up message was not acknowledged"))
	}
	select {
	case <-rec.warm:
	case <-ctx.Done():
		return o.stageError(parent, ctx, "waiting for the consumer group to join", errors.New("the warm-up message was not consumed"))
	}

	progress := newProgress(status, o.messages, rec)
	start := time.Now()
	pubErr := make(chan error, 1)
	var pubDone atomic.Int64 // UnixNano of the last PublishMessages return
	go func() {
		err := o.publish(ctx, pub, rec, payload, progress)
		pubDone.Store(time.Now().UnixNano())
		pubErr <- err
	}()
	stopProgress := progress.run(start)
	defer stopProgress()

	var (
		perr                error
		complete, published bool
	)
	select {
	case <-rec.done:
		complete = true
	case perr = <-pubErr:
		published = true
		if perr == nil {
			select {
			case <-rec.done:
				complete = true
			case <-ctx.Done():
			}
		}
	case <-ctx.Done():
	}
	if complete && !published {
		// Every message was handled; the last call may not have returned yet.
		select {
		case perr = <-pubErr:
		case <-ctx.Done():
			complete = false
		}
	}
	stopProgress()
	if !published && !complete {
		awaitPublish(pubErr)
	}
	if !complete {
		counts := fmt.Errorf("consumed %d of %d messages (published %d)", rec.consumed.Load(), o.messages, progress.published.Load())
		if ctx.Err() != nil {
			return o.stageError(parent, ctx, "", counts)
		}
		return fmt.Errorf("%w; %w", perr, counts)
	}
	if perr != nil {
		return perr
	}

	pubElapsed := time.Duration(pubDone.Load() - start.UnixNano())
	consElapsed := rec.lastAt().Sub(start)
	res.Publish = benchPublish{Messages: o.messages, Seconds: pubElapsed.Seconds(),
		MsgPerSec: perSec(o.messages, pubElapsed), MBPerSec: perSec(o.messages, pubElapsed) * float64(o.size) / 1e6}
	lat := rec.summary()
	res.Consume = benchConsume{Messages: int(lat.Count), Duplicates: int(rec.duplicates.Load()), Seconds: consElapsed.Seconds(),
		MsgPerSec: perSec(int(lat.Count), consElapsed)}
	res.Latency = benchLatency{P50: ms(lat.P50), P90: ms(lat.P90), P99: ms(lat.P99), Max: ms(lat.Max)}
	if o.json {
		return writeJSON(out, res)
	}
	return res.print(out, lat)
}

// stageError turns an error of a stage into the CLI's one-line error,
// saying so when the cause is --timeout or Ctrl-C.
func (o benchOpts) stageError(parent, ctx context.Context, stage string, err error) error {
	prefix := ""
	switch {
	case parent.Err() != nil:
		prefix = "interrupted"
	case expired(ctx):
		prefix = "timed out after " + o.timeout.String() + " (--timeout)"
	default:
		return fmt.Errorf("%s: %s", stage, oneLine(err.Error()))
	}
	if stage != "" {
		prefix += " " + stage
	}
	if err == context.DeadlineExceeded || err == context.Canceled {
		return errors.New(prefix)
	}
	return fmt.Errorf("%s: %s", prefix, oneLine(err.Error()))
}

// expired reports whether ctx is done or its deadline has passed (a
// network timeout set from the deadline may fire before ctx is done).
func expired(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || (ok && !time.Now().Before(d))
}

// prepareTopic checks that a broker answers (the CLI's one-line error
// when none does), creates the topic with o.partitions partitions unless it
// exists, and returns its partition count.
func (o benchOpts) prepareTopic(ctx context.Context, brokers []string, k config.Kafka) (int, error) {
	c, err := poison.Dial(ctx, brokers, k)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	cl, err := c.NewKafkaClient()
	if err != nil {
		return 0, err
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	_, err = adm.CreateTopic(ctx, int32(o.partitions), -1, nil, o.topic)
	if err == nil {
		return o.partitions, nil
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", o.topic, err)
	}
	td, err := adm.ListTopics(ctx, o.topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", o.topic, err)
	}
	t, ok := td[o.topic]
	if !ok || t.Err != nil {
		return 0, fmt.Errorf("describe topic %s: %v", o.topic, t.Err)
	}
	return len(t.Partitions), nil
}

// publishGrace bounds the wait for a PublishMessages call in flight at
// --timeout or Ctrl-C.
const publishGrace = 30 * time.Second

// awaitPublish waits (up to publishGrace) for the result of a
// PublishMessages call in flight. PublishMessages returns when its ctx
// ends, but the Kafka transport goes on sending the rest of the batch, and
// closing the service under it would crash the process (Sarama's producer
// panics when sent to after Close): bench does not let ctx end its calls
// and waits for the call in flight before stopping the service.
func awaitPublish(result <-chan error) {
	select {
	case <-result:
	case <-time.After(publishGrace):
	}
}

// publish sends the messages in batches of o.batch, one PublishMessages
// call at a time.
func (o benchOpts) publish(ctx context.Context, pub *app.Publisher, rec *benchRecorder, payload []byte, p *progress) error {
	batch := make([]*message.Message, 0, o.batch)
	for i := 0; i < o.messages; i += o.batch {
		batch = batch[:0]
		for j := i; j < min(i+o.batch, o.messages); j++ {
			key := ""
			if o.keys > 0 {
				key = "key-" + strconv.Itoa(j%o.keys)
			}
			batch = append(batch, rec.message(payload, strconv.Itoa(j), key))
		}
		sent := strconv.FormatInt(time.Now().UnixNano(), 10)
		for _, m := range batch {
			m.Metadata.Set(benchSentHeader, sent)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// See awaitPublish for why ctx does not end the call.
		if err := pub.PublishMessages(context.WithoutCancel(ctx), o.topic, batch...); err != nil {
			return fmt.Errorf("publish messages %d-%d: %w", i, i+len(batch)-1, err)
		}
		p.published.Add(int64(len(batch)))
	}
	return nil
}

// benchPayload is a JSON value of exactly size bytes (the handler decodes
// it, as a typed handler would): a string of 'x's, or "0" for size 1.
func benchPayload(size int) []byte {
	if size == 1 {
		return []byte("0")
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = 'x'
	}
	b[0], b[size-1] = '"', '"'
	return b
}

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtDur rounds d for reading: microseconds below 100ms, else milliseconds.
func fmtDur(d time.Duration) string {
	if d < 100*time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func (r benchResult) print(w io.Writer, lat loadgen.Summary) error {
	c := r.Config
	lines := []*line{
		new(line).word("config").kv("brokers", strings.Join(c.Brokers, ",")).kv("embedded", strconv.FormatBool(c.Embedded)).
			kv("topic", c.Topic).kv("partitions", strconv.Itoa(c.Partitions)).kv("messages", strconv.Itoa(c.Messages)).
			kv("size", strconv.Itoa(c.Size)).kv("batch", strconv.Itoa(c.Batch)).kv("keys", strconv.Itoa(c.Keys)).
			kv("acks", c.Acks).kv("consume", c.Consume),
		new(line).word("publish").kv("messages", strconv.Itoa(r.Publish.Messages)).kv("seconds", fmt.Sprintf("%.3f", r.Publish.Seconds)).
			kv("msg_per_sec", fmt.Sprintf("%.0f", r.Publish.MsgPerSec)).kv("mb_per_sec", fmt.Sprintf("%.2f", r.Publish.MBPerSec)),
		new(line).word("consume").kv("messages", strconv.Itoa(r.Consume.Messages)).kv("duplicates", strconv.Itoa(r.Consume.Duplicates)).
			kv("seconds", fmt.Sprintf("%.3f", r.Consume.Seconds)).kv("msg_per_sec", fmt.Sprintf("%.0f", r.Consume.MsgPerSec)),
		new(line).word("latency").kv("p50", fmtDur(lat.P50)).kv("p90", fmtDur(lat.P90)).kv("p99", fmtDur(lat.P99)).kv("max", fmtDur(lat.Max)),
	}
	for _, l := range lines {
		if err := l.writeTo(w); err != nil {
			return err
		}
	}
	return nil
}

// benchRecorder is the handler's side: it counts each message once and
// records its latency. Safe for concurrent use.
type benchRecorder struct {
	run      string
	n        int
	warm     chan struct{}
	warmOnce sync.Once
	done     chan struct{}

	consumed, duplicates atomic.Int64

	mu   sync.Mutex
	seen []uint64 // bit i: message i was handled
	hist loadgen.Histogram
	last time.Time
}

func newBenchRecorder(run string, n int) *benchRecorder {
	return &benchRecorder{run: run, n: n, warm: make(chan struct{}), done: make(chan struct{}), seen: make([]uint64, (n+63)/64)}
}

// message is a bench message with sequence seq (a number or benchWarmup)
// and partition key key ("" for none).
func (r *benchRecorder) message(payload []byte, seq, key string) *message.Message {
	m := message.NewMessage("", payload)
	m.Metadata.Set(benchRunHeader, r.run)
	m.Metadata.Set(benchSeqHeader, seq)
	m.Metadata.Set(benchSentHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
	app.WithKey(key)(m)
	return m
}

// handle is the bench handler: a typed handler of JSON values.
func (r *benchRecorder) handle(ctx context.Context, _ json.RawMessage) error {
	now := time.Now()
	if handlers.Header(ctx, benchRunHeader) != r.run {
		return nil // an earlier record of an existing --topic
	}
	seqHdr := handlers.Header(ctx, benchSeqHeader)
	if seqHdr == benchWarmup {
		r.warmOnce.Do(func() { close(r.warm) })
		return nil
	}
	seq, err := strconv.Atoi(seqHdr)
	if err != nil || seq < 0 || seq >= r.n {
		return handlers.Permanent(fmt.Errorf("bad %s header %q", benchSeqHeader, seqHdr))
	}
	sent, err := strconv.ParseInt(handlers.Header(ctx, benchSentHeader), 10, 64)
	if err != nil {
		return handlers.Permanent(fmt.Errorf("bad %s header: %w", benchSentHeader, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	word, bit := seq/64, uint64(1)<<(seq%64)
	if r.seen[word]&bit != 0 {
		r.duplicates.Add(1)
		return nil
	}
	r.seen[word] |= bit
	r.hist.Record(now.Sub(time.Unix(0, sent)))
	r.last = now
	if r.consumed.Add(1) == int64(r.n) {
		close(r.done)
	}
	return nil
}

func (r *benchRecorder) lastAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *benchRecorder) summary() loadgen.Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hist.Summary()
}

// progress prints "published X/N consumed Y/N (R msg/s)" to stderr every
// second: rewritten in place on a terminal, one line each time otherwise.
type progress struct {
	w         io.Writer
	tty       bool
	n         int
	rec       *benchRecorder
	published atomic.Int64
}

func newProgress(w io.Writer, n int, rec *benchRecorder) *progress {
	return &progress{w: w, tty: isTerminal(w), n: n, rec: rec}
}

// run prints until the returned stop is called (idempotent), which clears
// the line on a terminal.
func (p *progress) run(start time.Time) (stop func()) {
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lastN, lastT := int64(0), start
		for {
			select {
			case <-quit:
				if p.tty {
					fmt.Fprint(p.w, "\r\x1b[K")
				}
				return
			case now := <-t.C:
				c := p.rec.consumed.Load()
				rate := float64(c-lastN) / now.Sub(lastT).Seconds()
				lastN, lastT = c, now
				l := fmt.Sprintf("eventfx: bench: %s published %d/%d consumed %d/%d (%.0f msg/s)",
					now.Sub(start).Round(time.Second), p.published.Load(), p.n, c, p.n, rate)
				if p.tty {
					fmt.Fprint(p.w, "\r\x1b[K"+l)
				} else {
					fmt.Fprintln(p.w, l)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit); <-exited })
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
