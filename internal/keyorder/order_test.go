package keyorder_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
)

// orderTracker checks, across every handler of a test, that no key runs
// twice at once and that each key's acked records arrive in sequence.
type orderTracker struct {
	running  map[string]*atomic.Int32 // per key; the map is read-only
	overlaps atomic.Int64

	mu         sync.Mutex
	next       map[string]int // the key's next expected seq
	outOfOrder []string
	deliveries map[keyed]int // acked or nacked
	acks       atomic.Int64
}

func newOrderTracker(keys int) *orderTracker {
	o := &orderTracker{running: map[string]*atomic.Int32{}, next: map[string]int{}, deliveries: map[keyed]int{}}
	for k := range keys {
		o.running[fmt.Sprintf("k%03d", k)] = new(atomic.Int32)
	}
	return o
}

// handle runs work for msg as the key's only runner, and counts the ack
// in order if work returns true.
func (o *orderTracker) handle(t *testing.T, msg *message.Message, work func(keyed) bool) bool {
	k := keyOf(t, msg)
	running := o.running[k.key]
	if !running.CompareAndSwap(0, 1) {
		o.overlaps.Add(1)
	}
	ok := work(k)
	o.mu.Lock()
	o.deliveries[k]++
	if ok {
		if k.seq != o.next[k.key] {
			o.outOfOrder = append(o.outOfOrder, fmt.Sprintf("%s: got seq %d, want %d", k.key, k.seq, o.next[k.key]))
		}
		o.next[k.key] = k.seq + 1
	}
	o.mu.Unlock()
	running.Store(0)
	if ok {
		o.acks.Add(1)
	}
	return ok
}

// waitAcks waits until n records were acked.
func (o *orderTracker) waitAcks(t *testing.T, n int) {
	t.Helper()
	kafkatest.Eventually(t, waitFor, func() bool { return o.acks.Load() == int64(n) },
		func() string { return fmt.Sprintf("want %d acks, got %d", n, o.acks.Load()) })
}

// assertOnceInOrder asserts that no key ran twice at once, that each key's
// records were acked in order, and that each of the n records was
// delivered exactly once.
func (o *orderTracker) assertOnceInOrder(t *testing.T, n int) {
	t.Helper()
	assert.Zero(t, o.overlaps.Load(), "a key ran twice at once")
	assert.Empty(t, o.outOfOrder, "records out of their key's order")
	o.mu.Lock()
	defer o.mu.Unlock()
	assert.Len(t, o.deliveries, n, "distinct records delivered")
	for k, d := range o.deliveries {
		assert.Equal(t, 1, d, "deliveries of %s", k.id())
	}
}

// TestKeyOrder: 200 keys × 20 records on 4 partitions, handled concurrently
// with random delays: every key's records run one at a time, in order,
// and every record is acked exactly once.
func TestKeyOrder(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("order")
	const keys, perKey = 200, 20
	produceKeyed(t, addr, topic, keys, perKey)

	cfg := testConfig(addr, kafkatest.Unique("order"))
	cfg.MaxInFlight = 64
	sub := newSubscriber(t, cfg)
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)

	o := newOrderTracker(keys)
	wait := consume(ch, func(msg *message.Message) bool {
		return o.handle(t, msg, func(keyed) bool {
			time.Sleep(rand.N(time.Millisecond))
			return true
		})
	})
	o.waitAcks(t, keys*perKey)
	stop(t, sub)
	wait()

	o.assertOnceInOrder(t, keys*perKey)
	assert.Equal(t, int64(keys*perKey), kafkatest.Committed(t, addr, cfg.Group, topic), "committed offsets after Drain and Close")
}

// TestNackOnce: 2 % of the records are nacked once. Each is sent again
// after NackResendSleep on its key's lane: the key's order holds, and no
// record is delivered more than its nack requires.
func TestNackOnce(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("nack")
	const keys, perKey = 100, 20
	produceKeyed(t, addr, topic, keys, perKey)
	nackOnce := func(k keyed) bool {
		var n int
		fmt.Sscanf(k.key, "k%d", &n)
		return (n*perKey+k.seq)%50 == 7
	}

	cfg := testConfig(addr, kafkatest.Unique("nack"))
	cfg.MaxInFlight = 64
	sub := newSubscriber(t, cfg)
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)

	o := newOrderTracker(keys)
	var nacked sync.Map
	wait := consume(ch, func(msg *message.Message) bool {
		return o.handle(t, msg, func(k keyed) bool {
			if !nackOnce(k) {
				return true
			}
			_, seen := nacked.LoadOrStore(k.id(), true)
			return seen
		})
	})
	o.waitAcks(t, keys*perKey)
	stop(t, sub)
	wait()

	assert.Zero(t, o.overlaps.Load(), "a key ran twice at once")
	assert.Empty(t, o.outOfOrder, "acked records out of their key's order")
	o.mu.Lock()
	defer o.mu.Unlock()
	var nacks int
	for k, n := range o.deliveries {
		want := 1
		if nackOnce(k) {
			want, nacks = 2, nacks+1
		}
		assert.Equal(t, want, n, "deliveries of %s", k.id())
	}
	assert.Equal(t, keys*perKey/50, nacks, "records nacked once")
	assert.Equal(t, int64(keys*perKey), kafkatest.Committed(t, addr, cfg.Group, topic), "committed offsets after Drain and Close")
}

// TestKeyOrderWithSeveralReceivers is TestKeyOrder with three goroutines
// receiving from the subscription's channel, as eventfx's router does
// (one Watermill handler per processor): every receiver gets messages,
// each key's records still run one at a time and in order, every record
// is acked exactly once, and MaxInFlight bounds the receivers together.
func TestKeyOrderWithSeveralReceivers(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("receivers")
	const keys, perKey, receivers, maxInFlight = 200, 20, 3, 16
	produceKeyed(t, addr, topic, keys, perKey)

	cfg := testConfig(addr, kafkatest.Unique("receivers"))
	cfg.MaxInFlight = maxInFlight
	sub := newSubscriber(t, cfg)
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)

	o := newOrderTracker(keys)
	var perReceiver [receivers]atomic.Int64
	var inFlight, peak atomic.Int64
	waits := make([]func(), receivers)
	for i := range receivers {
		waits[i] = consume(ch, func(msg *message.Message) bool {
			perReceiver[i].Add(1)
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			return o.handle(t, msg, func(keyed) bool {
				time.Sleep(rand.N(time.Millisecond))
				return true
			})
		})
	}
	o.waitAcks(t, keys*perKey)
	stop(t, sub)
	for _, wait := range waits {
		wait() // returns once the channel is closed and its handlers ended
	}

	o.assertOnceInOrder(t, keys*perKey)
	assert.LessOrEqual(t, peak.Load(), int64(maxInFlight), "messages in flight over all the receivers")
	for i := range perReceiver {
		assert.Positive(t, perReceiver[i].Load(), "messages of receiver %d", i)
	}
	assert.Equal(t, int64(keys*perKey), kafkatest.Committed(t, addr, cfg.Group, topic), "committed offsets after Drain and Close")
}
