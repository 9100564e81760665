package handlers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/internal/meta"
)

// Batch defaults: up to 100 events, collected for at most 10ms.
const (
	defaultBatchSize = 100
	defaultBatchWait = 10 * time.Millisecond
)

// BatchSize bounds the events of one call of a batch handler (default
// 100).
func BatchSize(n int) Option { return func(o *options) { o.batchSize = n } }

// BatchWait bounds how long a batch handler waits, from the first event of
// a batch, for more before it calls the function with what it has
// (default 10ms). A batch that is full does not wait.
func BatchWait(d time.Duration) Option { return func(o *options) { o.batchWait = d } }

// BatchError is a batch function's error naming which events failed, by
// their index in the batch: those are retried (or poisoned at once when
// their error is Permanent), the others acknowledged. An index out of the
// batch's range is ignored; a nil error acknowledges its event.
type BatchError map[int]error

func (e BatchError) Error() string {
	idx := make([]int, 0, len(e))
	for i, err := range e {
		if err != nil {
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	parts := make([]string, len(idx))
	for n, i := range idx {
		parts[n] = fmt.Sprintf("event %d: %v", i, e[i])
	}
	return fmt.Sprintf("%d event(s) of the batch failed: %s", len(idx), strings.Join(parts, "; "))
}

// NewBatch declares a handler of events of type T that handles many at
// once: for work whose cost barely grows with the number of events (a
// multi-row INSERT, a bulk index request, a batch API) and whose
// concurrency is limited (a few database connections).
//
// Each message of the topic goes through the router's chain on its own —
// correlation ID, metrics, tracing, retry, poison queue, as for New — and,
// at the handler's step, joins the batch being collected. The first event
// of a batch waits up to BatchWait for more, up to BatchSize; then fn is
// called once with the batch, in the context of its first message (whose
// attempt timeout is the batch's), and every message is settled from fn's
// result:
//
//   - nil: every message is acknowledged;
//   - a BatchError: the events it names failed with their errors, the
//     others are acknowledged;
//   - any other error (a panic included): every event failed with it.
//
// A failed message is retried with the retry policy, on its own schedule;
// those retried at about the same time are batched again. A permanent
// error, or the last attempt's, poisons that message alone, with its own
// reason. A payload that does not decode, or whose Validate fails, is
// poisoned at once and never reaches fn. Batches may run concurrently:
// bound fn's own resources (a connection pool) inside it.
//
// A batch holds what is in flight at once, so the consumption mode decides
// how full it gets: by key (handlers.ConsumeByKey, kafka.consume: key) up
// to max_in_flight messages are in flight, and a key's next message
// arrives only after the previous one was settled, so a batch never holds
// two events of one key and per-key order holds; by partition one message
// per assigned partition is in flight, so batches hold at most as many
// events as the handler has partitions. Key mode with a large
// max_in_flight is what fills batches.
//
// Each call is an INTERNAL span "batch <name>", child of the first
// message's attempt span and linked to every message's, with the batch's
// size (messaging.batch.message_count) and handler (eventfx.handler).
func NewBatch[T any](name, topic string, fn func(ctx context.Context, events []T) error, opts ...Option) Handler {
	o := buildOptions(opts)
	b := &batcher[T]{name: name, codec: o.codec, size: o.batchSize, wait: o.batchWait, fn: fn}
	return Handler{Name: name, Topic: topic, Retry: o.retry, Consume: o.consume, MaxInFlight: o.maxInFlight, Func: b.handle}
}

// NewBatchEmitting is NewBatch for a function that emits Out events to
// publishTopic. They are published in one batch, within the attempts of
// the batch's messages: if publishing fails, every message of the batch
// fails (and is retried), and none is acknowledged before its batch's
// events were written. The emitted events get a new ID, the key of
// Out.EventKey() when Out implements Keyed, and the correlation ID and
// trace context of the batch: its first message's correlation ID, the
// batch span as parent. fn's events are emitted only when it returns no
// error at all (a BatchError included): a partial failure emits nothing
// and the acknowledged events' effects must not need their emitted events.
func NewBatchEmitting[In, Out any](name, topic, publishTopic string, fn func(ctx context.Context, events []In) ([]Out, error), opts ...Option) Handler {
	o := buildOptions(opts)
	b := &batcher[In]{name: name, codec: o.codec, size: o.batchSize, wait: o.batchWait}
	b.fn = func(ctx context.Context, events []In) error {
		outs, err := fn(ctx, events)
		if err != nil || len(outs) == 0 {
			return err
		}
		msgs := make([]*message.Message, 0, len(outs))
		for _, out := range outs {
			m, err := meta.Encode(ctx, o.codec, publishTopic, out)
			if err != nil {
				return codecError(fmt.Errorf("encode %T: %w", out, err))
			}
			msgs = append(msgs, m)
		}
		return meta.Emit(ctx, msgs)
	}
	return Handler{Name: name, Topic: topic, PublishTopic: publishTopic, Retry: o.retry, Consume: o.consume, MaxInFlight: o.maxInFlight, Func: b.handle}
}

// batcher collects the events of the messages in flight into batches.
type batcher[T any] struct {
	name  string
	codec Codec
	size  int
	wait  time.Duration
	// fn handles a batch: a nil error acknowledges every event; a
	// BatchError names the failed ones.
	fn func(ctx context.Context, events []T) error

	mu   sync.Mutex
	open *batch[T] // the batch collecting events, nil between batches
}

// batch is one call of the batch function.
type batch[T any] struct {
	ctx    context.Context // the first message's
	events []T
	spans  []trace.Link
	full   chan struct{} // closed when the batch reached its size
	done   chan struct{} // closed when errs holds every event's outcome
	errs   []error
}

// handle is the handler's function for one message: it decodes the event,
// adds it to the open batch (the first event opens one and leads it: it
// runs the batch function) and returns the event's outcome.
func (b *batcher[T]) handle(msg *message.Message) ([]*message.Message, error) {
	ctx, e, err := decode[T](msg, b.codec)
	if err != nil {
		return nil, err
	}
	bt, i, lead := b.join(ctx, e)
	if lead {
		b.lead(bt)
	}
	<-bt.done
	return nil, bt.errs[i]
}

// join adds e, handled in ctx, to the open batch, opening one if there is
// none; it returns the batch, e's index in it, and whether e opened it.
func (b *batcher[T]) join(ctx context.Context, e T) (*batch[T], int, bool) {
	size := b.size
	if size <= 0 {
		size = defaultBatchSize
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bt, lead := b.open, false
	if bt == nil {
		bt = &batch[T]{ctx: ctx, full: make(chan struct{}), done: make(chan struct{})}
		b.open, lead = bt, true
	}
	bt.events = append(bt.events, e)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		bt.spans = append(bt.spans, trace.Link{SpanContext: sc})
	}
	if len(bt.events) >= size {
		close(bt.full)
		b.open = nil
	}
	return bt, len(bt.events) - 1, lead
}

// lead waits until bt is full, its wait is over or its first message's
// context ends, closes it to new events, and runs the batch function.
func (b *batcher[T]) lead(bt *batch[T]) {
	wait := b.wait
	if wait <= 0 {
		wait = defaultBatchWait
	}
	t := time.NewTimer(wait)
	select {
	case <-bt.full:
	case <-t.C:
	case <-bt.ctx.Done():
	}
	t.Stop()
	b.mu.Lock()
	if b.open == bt {
		b.open = nil
	}
	b.mu.Unlock()
	bt.errs = b.run(bt)
	close(bt.done)
}

// run calls the batch function on bt in a span of its own and returns
// each event's outcome.
func (b *batcher[T]) run(bt *batch[T]) (errs []error) {
	n := len(bt.events)
	tp := trace.SpanFromContext(bt.ctx).TracerProvider()
	ctx, span := tp.Tracer("github.com/eventfx/eventfx/handlers").Start(bt.ctx, "batch "+b.name,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithLinks(bt.spans...),
		trace.WithAttributes(attribute.Int("messaging.batch.message_count", n), attribute.String("eventfx.handler", b.name)))
	defer span.End()
	all := func(err error) []error {
		errs := make([]error, n)
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("panic: %s", meta.OneLine(fmt.Sprint(r)))
			Logger(bt.ctx).Error("batch handler panicked", "batch_size", n, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			span.SetStatus(codes.Error, err.Error())
			errs = all(err)
		}
	}()
	err := b.fn(ctx, bt.events)
	if err == nil {
		return make([]error, n)
	}
	span.SetStatus(codes.Error, meta.OneLine(err.Error()))
	var be BatchError
	if !errors.As(err, &be) {
		return all(err)
	}
	errs = make([]error, n)
	for i, ierr := range be {
		if i >= 0 && i < n {
			errs[i] = ierr
		}
	}
	return errs
}
