// Package bench is the run logic of `eventfx bench`: a service built from
// eventfx's real modules publishes messages in batches, or at a steady
// rate (Options.Rate), and consumes them through the whole middleware
// chain, and the run reports the publish and consume rates and the
// end-to-end latency: from just before each PublishMessages call to the
// handler.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

// Headers of the messages `eventfx bench` publishes.
const (
	// runHeader is the run's ID: the handler skips records of other
	// runs (an existing --topic).
	runHeader = "eventfx_bench_run"
	// seqHeader numbers the messages 0..N-1; "warmup" marks the
	// message sent before the clock starts.
	seqHeader = "eventfx_bench_seq"
	// sentHeader is the send time, Unix nanoseconds.
	sentHeader = "eventfx_bench_sent"
	warmup     = "warmup"
	// handlerName is the bench handler's name (its consumer group's suffix).
	handlerName = "bench"
)

// Run measures one run: it prints its progress to status and returns what
// it measured. Its errors are one line each, saying so when the cause is
// o.Timeout or parent's end (Ctrl-C).
func Run(parent context.Context, o Options, status io.Writer) (Result, error) {
	ctx, cancel := context.WithTimeout(parent, o.Timeout)
	defer cancel()
	brokers, cfg, embedded := o.Brokers, o.Config.WithDefaults(), len(o.Brokers) == 0
	if embedded {
		b, err := broker.Start(broker.Config{Partitions: o.Partitions})
		if err != nil {
			return Result{}, err
		}
		defer b.Close() // after the service, deferred below
		brokers = []string{b.Addr()}
	}
	if o.Topic == "" {
		o.Topic = "eventfx.bench." + RandomSuffix()
	}
	partitions, err := o.prepareTopic(ctx, brokers, cfg.Kafka)
	if err != nil {
		if !expired(ctx) {
			return Result{}, err // "no Kafka broker answered at …", as every command says
		}
		return Result{}, o.stageError(parent, ctx, "connecting to Kafka", err)
	}

	run := RandomSuffix()
	cfg.Service = "eventfx-bench-" + run
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.ConsumerGroup = cfg.Service // a fresh group: "<service>.bench"
	cfg.Kafka.InitialOffset = config.OffsetOldest
	if o.Acks != "" {
		cfg.Kafka.Acks = o.Acks
	}
	if cfg.Observability.Log.Level != config.LogDebug {
		cfg.Observability.Log.Level = config.LogWarn // keep stderr for the progress line
	}
	rec := newRecorder(run, o.Messages)
	var pub *app.Publisher
	a := fx.New(
		app.Core(cfg),
		app.KafkaModule,
		app.PublisherModule,
		app.SubscriberModule,
		handlers.Register(handlers.New(handlerName, o.Topic, rec.handle)),
		fx.Populate(&pub),
	)
	if err := a.Err(); err != nil {
		return Result{}, err
	}
	if err := a.Start(ctx); err != nil {
		return Result{}, o.stageError(parent, ctx, "starting the service", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(parent), cfg.ShutdownTimeout+15*time.Second)
		defer cancel()
		_ = a.Stop(stopCtx) // a failure to stop does not change the measurement
	}()

	res := Result{Config: Setup{
		Brokers: brokers, Embedded: embedded, Topic: o.Topic, Partitions: partitions,
		Messages: o.Messages, Size: o.Size, Batch: o.Batch, Keys: o.Keys,
		Acks: cfg.Kafka.Acks, Consume: cfg.Kafka.Consume,
	}}
	where := strings.Join(brokers, ",")
	if embedded {
		where += " (embedded, in this process)"
	}
	paced := ""
	if o.Rate > 0 {
		paced = fmt.Sprintf(" at %d/s (about %s)", o.Rate, o.schedule().Round(100*time.Millisecond))
	}
	fmt.Fprintf(status, "eventfx: bench: %d messages of %d B%s to %s (%d partitions) on %s\n", o.Messages, o.Size, paced, o.Topic, partitions, where)

	// Warm-up: one message through, so the clock starts with the consumer
	// group joined and the topic's metadata known.
	fmt.Fprintln(status, "eventfx: bench: waiting for the consumer group to join")
	payload := Payload(o.Size)
	warm := make(chan error, 1)
	go func() {
		warm <- pub.PublishMessages(context.WithoutCancel(ctx), o.Topic, rec.message(payload, warmup, ""))
	}()
	select {
	case err := <-warm:
		if err != nil {
			return Result{}, o.stageError(parent, ctx, "warming up", err)
		}
	case <-ctx.Done():
		awaitPublish(warm)
		return Result{}, o.stageError(parent, ctx, "warming up", errors.New("the warm-up message was not acknowledged"))
	}
	select {
	case <-rec.warm:
	case <-ctx.Done():
		return Result{}, o.stageError(parent, ctx, "waiting for the consumer group to join", errors.New("the warm-up message was not consumed"))
	}

	progress := newProgress(status, o.Messages, rec)
	start := time.Now()
	pubErr := make(chan error, 1)
	var pubDone atomic.Int64 // UnixNano of the last PublishMessages return
	var pace pacing          // the paced publishing's; read once pubErr was received
	go func() {
		var err error
		if o.Rate > 0 {
			err = o.publishPaced(ctx, pub, rec, payload, progress, start, &pace)
		} else {
			err = o.publish(ctx, pub, rec, payload, progress)
		}
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
		counts := fmt.Errorf("consumed %d of %d messages (published %d)", rec.consumed.Load(), o.Messages, progress.published.Load())
		if ctx.Err() != nil {
			return Result{}, o.stageError(parent, ctx, "", counts)
		}
		return Result{}, fmt.Errorf("%w; %w", perr, counts)
	}
	if perr != nil {
		return Result{}, perr
	}

	pubElapsed := time.Duration(pubDone.Load() - start.UnixNano())
	consElapsed := rec.lastAt().Sub(start)
	res.Publish = Publish{Messages: o.Messages, Seconds: pubElapsed.Seconds(),
		MsgPerSec: PerSec(o.Messages, pubElapsed), MBPerSec: PerSec(o.Messages, pubElapsed) * float64(o.Size) / 1e6}
	lat := rec.summary()
	res.Consume = Consume{Messages: int(lat.Count), Duplicates: int(rec.duplicates.Load()), Seconds: consElapsed.Seconds(),
		MsgPerSec: PerSec(int(lat.Count), consElapsed)}
	res.Latency = LatencyOf(lat)
	res.Summary = lat
	if o.Rate > 0 {
		span := pace.last.Sub(start) + due(1, o.Rate)
		res.Rate = &Rate{Requested: o.Rate, Achieved: PerSec(o.Messages, span),
			MaxBehindMs: Millis(pace.maxBehind), MaxBehind: pace.maxBehind}
	}
	return res, nil
}

// stageError turns an error of a stage into the CLI's one-line error,
// saying so when the cause is --timeout or Ctrl-C.
func (o Options) stageError(parent, ctx context.Context, stage string, err error) error {
	prefix := ""
	switch {
	case parent.Err() != nil:
		prefix = "interrupted"
	case expired(ctx):
		prefix = "timed out after " + o.Timeout.String() + " (--timeout)"
	default:
		return fmt.Errorf("%s: %s", stage, meta.OneLine(err.Error()))
	}
	if stage != "" {
		prefix += " " + stage
	}
	if err == context.DeadlineExceeded || err == context.Canceled {
		return errors.New(prefix)
	}
	return fmt.Errorf("%s: %s", prefix, meta.OneLine(err.Error()))
}

// expired reports whether ctx is done or its deadline has passed (a
// network timeout set from the deadline may fire before ctx is done).
func expired(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || (ok && !time.Now().Before(d))
}

// prepareTopic checks that a broker answers (the CLI's one-line error
// when none does), creates the topic with o.Partitions partitions unless it
// exists, and returns its partition count.
func (o Options) prepareTopic(ctx context.Context, brokers []string, k config.Kafka) (int, error) {
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
	_, err = adm.CreateTopic(ctx, int32(o.Partitions), -1, nil, o.Topic)
	if err == nil {
		return o.Partitions, nil
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", o.Topic, err)
	}
	td, err := adm.ListTopics(ctx, o.Topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", o.Topic, err)
	}
	t, ok := td[o.Topic]
	if !ok || t.Err != nil {
		return 0, fmt.Errorf("describe topic %s: %v", o.Topic, t.Err)
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

// publish sends the messages in batches of o.Batch, one PublishMessages
// call at a time.
func (o Options) publish(ctx context.Context, pub *app.Publisher, rec *recorder, payload []byte, p *progress) error {
	batch := make([]*message.Message, 0, o.Batch)
	for i := 0; i < o.Messages; i += o.Batch {
		batch = batch[:0]
		for j := i; j < min(i+o.Batch, o.Messages); j++ {
			key := ""
			if o.Keys > 0 {
				key = "key-" + strconv.Itoa(j%o.Keys)
			}
			batch = append(batch, rec.message(payload, strconv.Itoa(j), key))
		}
		sent := strconv.FormatInt(time.Now().UnixNano(), 10)
		for _, m := range batch {
			m.Metadata.Set(sentHeader, sent)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// See awaitPublish for why ctx does not end the call.
		if err := pub.PublishMessages(context.WithoutCancel(ctx), o.Topic, batch...); err != nil {
			return fmt.Errorf("publish messages %d-%d: %w", i, i+len(batch)-1, err)
		}
		p.published.Add(int64(len(batch)))
	}
	return nil
}

// maxPacedCalls bounds the PublishMessages calls of a paced run in flight
// at once. A call waits for its acknowledgements (about a millisecond on
// an embedded broker), so a few are in flight at 10,000 messages a
// second; a broker too slow for the rate fills them, and the pacer then
// falls behind (Rate.Achieved, Rate.MaxBehind) rather than piling up
// goroutines.
const maxPacedCalls = 256

// pacing is what a paced run's publishing did: when its last call
// started, and the latest a call started after its first message was due.
type pacing struct {
	last      time.Time
	maxBehind time.Duration
}

// publishPaced sends the messages at o.Rate per second from start, an
// open loop: message i is due at start + i/o.Rate; the pacer sleeps until
// the next message is due, then hands every message due by then (at most
// o.Batch) to a PublishMessages call of its own, without waiting for the
// acknowledgements of earlier calls (at most maxPacedCalls in flight).
// Go's timers wake up to a millisecond late when the process is idle, so
// at thousands a second a call carries a few messages. Each message's
// send time is stamped just before its call. It returns once every call
// returned: the first error, or ctx's when it ended the schedule.
func (o Options) publishPaced(ctx context.Context, pub *app.Publisher, rec *recorder, payload []byte, p *progress, start time.Time, pace *pacing) error {
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		failed  = make(chan struct{})
		callErr error
	)
	slots := make(chan struct{}, maxPacedCalls)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; i < o.Messages; {
		if wait := time.Until(start.Add(due(i, o.Rate))); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-failed:
			case <-ctx.Done():
			}
		}
		select {
		case slots <- struct{}{}:
		case <-failed:
		case <-ctx.Done():
		}
		select {
		case <-failed:
			wg.Wait()
			return callErr
		default:
		}
		if err := ctx.Err(); err != nil {
			wg.Wait()
			return err
		}
		// Every message due by now, at least message i.
		now := time.Now()
		n := int(float64(now.Sub(start))*float64(o.Rate)/float64(time.Second)) + 1
		j := min(max(n, i+1), i+o.Batch, o.Messages)
		batch := make([]*message.Message, 0, j-i)
		for k := i; k < j; k++ {
			key := ""
			if o.Keys > 0 {
				key = "key-" + strconv.Itoa(k%o.Keys)
			}
			batch = append(batch, rec.message(payload, strconv.Itoa(k), key))
		}
		sentAt := time.Now()
		sent := strconv.FormatInt(sentAt.UnixNano(), 10)
		for _, m := range batch {
			m.Metadata.Set(sentHeader, sent)
		}
		pace.last = sentAt
		pace.maxBehind = max(pace.maxBehind, sentAt.Sub(start.Add(due(i, o.Rate))))
		wg.Add(1)
		go func(first int) {
			defer wg.Done()
			defer func() { <-slots }()
			// See awaitPublish for why ctx does not end the call.
			if err := pub.PublishMessages(context.WithoutCancel(ctx), o.Topic, batch...); err != nil {
				errOnce.Do(func() {
					callErr = fmt.Errorf("publish messages %d-%d: %w", first, first+len(batch)-1, err)
					close(failed)
				})
				return
			}
			p.published.Add(int64(len(batch)))
		}(i)
		i = j
	}
	wg.Wait()
	select {
	case <-failed:
		return callErr
	default:
		return nil
	}
}
