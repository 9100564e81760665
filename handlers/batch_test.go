package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/eventfxtest"
	"github.com/eventfx/eventfx/handlers"
)

// Row is an event a batch handler stores.
type Row struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
	// Fail makes the batch function fail this row: "permanent",
	// "transient" (on its first try only), "once-whole" (the whole batch,
	// once), "panic".
	Fail string `json:"fail,omitempty"`
}

func (r Row) Validate() error {
	if r.Seq < 0 {
		return fmt.Errorf("seq must not be negative, got %d", r.Seq)
	}
	return nil
}

// store records what the batch function was given, as a table would.
type store struct {
	mu      sync.Mutex
	batches [][]Row
	seen    map[string]int // "key/seq" → calls that included it
	stored  map[string]int // "key/seq" → calls that succeeded for it
}

func newStore() *store { return &store{seen: map[string]int{}, stored: map[string]int{}} }

func id(r Row) string { return fmt.Sprintf("%s/%d", r.Key, r.Seq) }

// insert is the batch function: it fails the rows that ask for it and
// stores the others.
func (s *store) insert(_ context.Context, rows []Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, append([]Row(nil), rows...))
	failed := handlers.BatchError{}
	for i, r := range rows {
		s.seen[id(r)]++
		switch {
		case r.Fail == "panic":
			panic("row " + id(r) + "\nbroke the driver")
		case r.Fail == "once-whole" && s.seen[id(r)] == 1:
			return errors.New("connection reset")
		case r.Fail == "permanent":
			failed[i] = handlers.Permanent(fmt.Errorf("row %s violates a constraint", id(r)))
		case r.Fail == "transient" && s.seen[id(r)] == 1:
			failed[i] = errors.New("lock timeout")
		default:
			s.stored[id(r)]++
		}
	}
	if len(failed) > 0 {
		return failed
	}
	return nil
}

func (s *store) storedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored)
}

// rows publishes keys×perKey rows, each key's in order of seq, in one
// batch; edit may change a row.
func rows(t *testing.T, env *eventfxtest.Env, topic string, keys, perKey int, edit func(*Row)) {
	t.Helper()
	var msgs []*message.Message
	for seq := range perKey {
		for k := range keys {
			r := Row{Key: fmt.Sprintf("k%02d", k), Seq: seq}
			if edit != nil {
				edit(&r)
			}
			payload, err := json.Marshal(r)
			require.NoError(t, err)
			m := message.NewMessage(id(r), payload)
			m.Metadata.Set("_eventfx_key", r.Key)
			msgs = append(msgs, m)
		}
	}
	require.NoError(t, env.Publisher().PublishMessages(context.Background(), topic, msgs...))
}

func TestBatchHandlerInKeyModeFillsBatchesAndKeepsEachKeysOrder(t *testing.T) {
	s := newStore()
	h := handlers.NewBatch("rows", "rows", s.insert, handlers.ConsumeByKey(256), handlers.BatchSize(50), handlers.BatchWait(20*time.Millisecond))
	env := eventfxtest.New(t, eventfxtest.Modules(handlers.Register(h)))
	const keys, perKey = 40, 10
	rows(t, env, "rows", keys, perKey, nil)
	env.Eventually(func() bool { return s.storedCount() == keys*perKey }, "every row stored")
	env.Stop()
	env.NoPoison()

	s.mu.Lock()
	defer s.mu.Unlock()
	largest, last := 0, map[string]int{}
	for _, b := range s.batches {
		largest = max(largest, len(b))
		assert.LessOrEqual(t, len(b), 50, "BatchSize bounds a batch")
		inBatch := map[string]bool{}
		for _, r := range b {
			assert.False(t, inBatch[r.Key], "two events of key %s in one batch", r.Key)
			inBatch[r.Key] = true
			if prev, ok := last[r.Key]; ok {
				assert.Equal(t, prev+1, r.Seq, "key %s: order", r.Key)
			}
			last[r.Key] = r.Seq
		}
	}
	t.Logf("%d rows in %d calls, the largest of %d", keys*perKey, len(s.batches), largest)
	assert.Greater(t, largest, 10, "batches fill in key mode")
	for k, n := range s.stored {
		assert.Equal(t, 1, n, "row %s stored once", k)
	}
}

func TestBatchHandlerSettlesEachEventFromABatchError(t *testing.T) {
	s := newStore()
	h := handlers.NewBatch("rows", "rows", s.insert, handlers.ConsumeByKey(64),
		handlers.WithRetry(config.Retry{MaxRetries: 2}))
	env := eventfxtest.New(t, eventfxtest.Modules(handlers.Register(h)))
	rows(t, env, "rows", 8, 3, func(r *Row) {
		switch id(*r) {
		case "k01/1":
			r.Fail = "permanent"
		case "k02/0", "k05/2":
			r.Fail = "transient"
		}
	})
	poisoned := env.Poisoned(1)
	env.Eventually(func() bool { return s.storedCount() == 8*3-1 }, "every other row stored")
	env.Stop()

	assert.Equal(t, "rows", poisoned[0].Handler)
	assert.Equal(t, "row k01/1 violates a constraint", poisoned[0].Reason)
	assert.Equal(t, 1, poisoned[0].Attempts, "a permanent error is not retried")
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Equal(t, 2, s.seen["k02/0"], "a transient failure is retried")
	assert.Equal(t, 1, s.seen["k01/1"])
	for k, n := range s.stored {
		assert.Equal(t, 1, n, "row %s: the acknowledged rows are not handled again", k)
	}
	assert.Len(t, env.Messages(env.Config().Poison.Topic, 1), 1, "only the failed row is poisoned")
}

func TestBatchHandlerRetriesAWholeBatchThenPoisonsEachWithItsReason(t *testing.T) {
	s := newStore()
	h := handlers.NewBatch("rows", "rows", func(ctx context.Context, rs []Row) error {
		if err := s.insert(ctx, rs); err != nil {
			return err
		}
		return errors.New("disk full") // every call fails, after recording
	}, handlers.ConsumeByKey(64), handlers.WithRetry(config.Retry{MaxRetries: 1}))
	env := eventfxtest.New(t, eventfxtest.Modules(handlers.Register(h)))
	rows(t, env, "rows", 3, 2, nil)
	poisoned := env.Poisoned(6)
	env.Stop()
	ids := map[string]bool{}
	for _, p := range poisoned {
		ids[p.Message.UUID] = true
		assert.Equal(t, "disk full", p.Reason)
		assert.Equal(t, 2, p.Attempts, "first try and one retry")
		assert.Equal(t, "rows", p.Topic)
	}
	assert.Len(t, ids, 6, "each message poisoned once, on its own")
}

func TestBatchHandlerTurnsAPanicIntoAnErrorForTheBatch(t *testing.T) {
	s := newStore()
	h := handlers.NewBatch("rows", "rows", s.insert, handlers.ConsumeByKey(8), handlers.WithRetry(config.Retry{MaxRetries: config.NoRetries}))
	env := eventfxtest.New(t, eventfxtest.Modules(handlers.Register(h)))
	rows(t, env, "rows", 1, 1, func(r *Row) { r.Fail = "panic" })
	p := env.Poisoned(1)[0]
	assert.Equal(t, "panic: row k00/0 broke the driver", p.Reason)
	// The service goes on: the next batch is handled.
	rows(t, env, "rows", 2, 1, func(r *Row) { r.Seq = 7 })
	env.Eventually(func() bool { return s.storedCount() == 2 }, "the next rows stored")
}

func TestBatchHandlerPoisonsWhatDoesNotDecodeWithoutCallingTheFunction(t *testing.T) {
	s := newStore()
	h := handlers.NewBatch("rows", "rows", s.insert, handlers.ConsumeByKey(8))
	env := eventfxtest.New(t, eventfxtest.Modules(handlers.Register(h)))
	env.PublishRaw("rows", []byte(`{"key":`))
	env.Publish("rows", Row{Key: "k", Seq: -1})
	env.Publish("rows", Row{Key: "k", Seq: 1})
	got := env.Poisoned(2)
	env.Eventually(func() bool { return s.storedCount() == 1 }, "the good row stored")
	env.Stop()
	assert.Contains(t, got[0].Reason+got[1].Reason, "decode handlers_test.Row")
	assert.Contains(t, got[0].Reason+got[1].Reason, "invalid handlers_test.Row: seq must not be negative, got -1")
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Len(t, s.seen, 1, "only the good row reached the function")
}

func TestBatchHandlerByPartitionBatchesAcrossPartitions(t *testing.T) {
	s := newStore()
	h := handlers.NewBatch("rows", "rows", s.insert, handlers.ConsumeByPartition(), handlers.BatchWait(20*time.Millisecond))
	env := eventfxtest.New(t, eventfxtest.Modules(handlers.Register(h)))
	rows(t, env, "rows", 16, 5, nil)
	env.Eventually(func() bool { return s.storedCount() == 80 }, "every row stored")
	env.Stop()
	env.NoPoison()
	s.mu.Lock()
	defer s.mu.Unlock()
	largest := 0
	for _, b := range s.batches {
		largest = max(largest, len(b))
		assert.LessOrEqual(t, len(b), 4, "at most one event per partition in flight (4 partitions)")
	}
	assert.Greater(t, largest, 1, "events of several partitions share a batch")
}

// Payment is what the emitting batch handler emits per row.
type Payment struct {
	Row string `json:"row"`
}

func (p Payment) EventKey() string { return p.Row }

func TestBatchEmittingPublishesTheBatchsEventsBeforeAcknowledging(t *testing.T) {
	var calls sync.Map
	h := handlers.NewBatchEmitting("pay", "rows", "payments", func(ctx context.Context, rs []Row) ([]Payment, error) {
		out := make([]Payment, len(rs))
		for i, r := range rs {
			out[i] = Payment{Row: id(r)}
			calls.Store(id(r), true)
		}
		return out, nil
	}, handlers.ConsumeByKey(64), handlers.BatchSize(16))
	env := eventfxtest.New(t, eventfxtest.Modules(handlers.Register(h)))
	rows(t, env, "rows", 8, 4, nil)
	got := env.Messages("payments", 32)
	env.Stop()
	env.NoPoison()
	rowsPaid := map[string]bool{}
	for _, m := range got {
		p := eventfxtest.Decode[Payment](t, m)
		rowsPaid[p.Row] = true
		assert.Equal(t, p.Row, eventfxtest.Key(m), "keyed by EventKey")
		assert.NotEmpty(t, m.Metadata.Get("correlation_id"), "the batch's correlation ID")
	}
	assert.Len(t, rowsPaid, 32)
}

// Outside a router (a unit test of the function), concurrent calls of the
// handler's function are batched too, and each call is a span linked to
// the spans of its messages.
func TestBatchSpanIsLinkedToEveryMessagesSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	h := handlers.NewBatch("rows", "rows", func(ctx context.Context, rs []Row) error {
		for _, r := range rs {
			if r.Fail != "" {
				return errors.New("refused")
			}
		}
		return nil
	}, handlers.BatchSize(3), handlers.BatchWait(time.Minute))

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		ctx, span := tp.Tracer("test").Start(context.Background(), fmt.Sprintf("process %d", i))
		payload, _ := json.Marshal(Row{Key: "k", Seq: i, Fail: map[bool]string{true: "x"}[i == 2]})
		msg := message.NewMessage(fmt.Sprint(i), payload)
		msg.SetContext(ctx)
		wg.Go(func() {
			defer span.End()
			_, errs[i] = h.Func(msg)
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.EqualError(t, err, "refused", "message %d: the batch's error is each message's", i)
	}
	var batch sdktrace.ReadOnlySpan
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == "batch rows" {
			batch = s
		}
	}
	require.NotNil(t, batch, "a span per batch call")
	assert.Len(t, batch.Links(), 3, "linked to each message's span")
	assert.Equal(t, codes.Error, batch.Status().Code)
	assert.Equal(t, int64(3), attr(batch, "messaging.batch.message_count"))
}

func attr(s sdktrace.ReadOnlySpan, key string) int64 {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsInt64()
		}
	}
	return -1
}

// The in-memory transport delivers one message at a time: each is a batch
// of one, after BatchWait. Unit tests of a batch function work there too.
func TestBatchHandlerRunsInMemory(t *testing.T) {
	s := newStore()
	h := handlers.NewBatch("rows", "rows", s.insert, handlers.BatchWait(time.Millisecond))
	env := eventfxtest.New(t, eventfxtest.InMemory(), eventfxtest.Modules(handlers.Register(h)))
	env.Publish("rows", Row{Key: "a", Seq: 1})
	env.Publish("rows", Row{Key: "b", Seq: 1, Fail: "permanent"})
	assert.Equal(t, "row b/1 violates a constraint", env.Poisoned(1)[0].Reason)
	env.Eventually(func() bool { return s.storedCount() == 1 }, "row a stored")
}
