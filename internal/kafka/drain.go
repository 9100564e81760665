package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

// drainTracker sits between Sarama and watermill-kafka and knows, per
// claimed partition, how many records watermill-kafka took (it unmarshals
// each one it hands to the router: trackingUnmarshaler) and how many of
// them were marked for commit (the session it gets, through its tracer
// hook, counts the marks). Drain stops handing out records and waits until
// every handed record is marked: then closing the subscriber commits
// exactly what was handled, and nothing in flight is lost or poisoned.
//
// Counting in Unmarshal, on watermill-kafka's own goroutine, costs nothing
// on a partition's path; a goroutine forwarding the claim's records cost
// a handoff per message.
type drainTracker struct {
	// sessions counts consumer-group sessions set up and not yet cleaned
	// up: above zero, the group was joined and partitions assigned.
	sessions  atomic.Int32
	stop      chan struct{}
	stopOnce  sync.Once
	closed    chan struct{}
	closeOnce sync.Once
	// mu guards claims (written when a claim starts and ends) and orders
	// hand after Drain's stop; records take it shared.
	mu     sync.RWMutex
	claims map[claimKey]*claimCount
}

type claimKey struct {
	topic     string
	partition int32
}

type claimCount struct {
	handed atomic.Int64
	marked atomic.Int64
}

func newDrainTracker() *drainTracker {
	return &drainTracker{stop: make(chan struct{}), closed: make(chan struct{}), claims: make(map[claimKey]*claimCount)}
}

// close releases what waits for the subscriber to close.
func (t *drainTracker) close() { t.closeOnce.Do(func() { close(t.closed) }) }

func (t *drainTracker) stopping() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}

// hand counts one more record of a claimed partition handed out, unless
// draining started. It holds t.mu shared, and Drain stops the tracker
// holding it exclusively, so once Drain has stopped the tracker, every
// record counted is seen by idle.
func (t *drainTracker) hand(k claimKey) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopping() {
		return false
	}
	if c := t.claims[k]; c != nil {
		c.handed.Add(1)
	}
	return true
}

// Drain stops handing out records and waits until all handed ones are
// marked, or ctx ends.
func (t *drainTracker) Drain(ctx context.Context) error {
	t.mu.Lock()
	t.stopOnce.Do(func() { close(t.stop) })
	t.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !t.idle() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (t *drainTracker) idle() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, c := range t.claims {
		if c.handed.Load() != c.marked.Load() {
			return false
		}
	}
	return true
}

// tracer implements watermill-kafka's SaramaTracer; only the consumer group
// handler is wrapped.
type tracer struct{ t *drainTracker }

func (tr tracer) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }
func (tr tracer) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}
func (tr tracer) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}
func (tr tracer) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	return trackedHandler{ConsumerGroupHandler: h, t: tr.t}
}

type trackedHandler struct {
	sarama.ConsumerGroupHandler
	t *drainTracker
}

func (h trackedHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.t.sessions.Add(1)
	return h.ConsumerGroupHandler.Setup(sess)
}

func (h trackedHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.t.sessions.Add(-1)
	return h.ConsumerGroupHandler.Cleanup(sess)
}

func (h trackedHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	k := claimKey{topic: claim.Topic(), partition: claim.Partition()}
	c := &claimCount{}
	h.t.mu.Lock()
	h.t.claims[k] = c
	h.t.mu.Unlock()
	defer func() {
		h.t.mu.Lock()
		if h.t.claims[k] == c {
			delete(h.t.claims, k)
		}
		h.t.mu.Unlock()
	}()
	return h.ConsumerGroupHandler.ConsumeClaim(markCounter{ConsumerGroupSession: sess, c: c}, claim)
}

// trackingUnmarshaler is the subscriber's unmarshaler: it counts each
// record watermill-kafka hands out and, once draining started, hands out
// none. A record it refuses is neither handled nor marked: it is
// delivered again after the restart. It waits for the subscriber to close
// (the router closes it right after the drain), then fails, which ends
// the partition's claim.
type trackingUnmarshaler struct{ t *drainTracker }

// errDraining is what a record fetched after the drain started gets.
var errDraining = errors.New("draining for shutdown: record not handed out, delivered again after the restart")

func (u trackingUnmarshaler) Unmarshal(km *sarama.ConsumerMessage) (*message.Message, error) {
	if !u.t.hand(claimKey{topic: km.Topic, partition: km.Partition}) {
		<-u.t.closed
		return nil, errDraining
	}
	return saramaMessage(km), nil
}

type markCounter struct {
	sarama.ConsumerGroupSession
	c *claimCount
}

func (s markCounter) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	s.ConsumerGroupSession.MarkMessage(msg, metadata)
	s.c.marked.Add(1)
}
