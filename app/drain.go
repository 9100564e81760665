package app

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// drainTracker sits between Sarama and watermill-kafka (through
// watermill-kafka's tracer hook) and knows, per claimed partition, how many
// records were handed to watermill-kafka and how many of them were marked
// for commit. Drain stops handing out records and waits until every handed
// record is marked: then closing the subscriber commits exactly what was
// handled, and nothing in flight is lost or poisoned.
type drainTracker struct {
	// sessions counts consumer-group sessions set up and not yet cleaned
	// up: above zero, the group was joined and partitions assigned.
	sessions atomic.Int32
	stop     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex
	claims   map[*claimCount]struct{}
}

type claimCount struct {
	handed atomic.Int64
	marked atomic.Int64
}

func newDrainTracker() *drainTracker {
	return &drainTracker{stop: make(chan struct{}), claims: make(map[*claimCount]struct{})}
}

func (t *drainTracker) stopping() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}

// hand counts one more record handed out on claim c, unless draining
// started. It shares t.mu with Drain and idle, so once Drain has stopped
// the tracker, every record counted is seen by idle.
func (t *drainTracker) hand(c *claimCount) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping() {
		return false
	}
	c.handed.Add(1)
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
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.claims {
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
	c := &claimCount{}
	h.t.mu.Lock()
	h.t.claims[c] = struct{}{}
	h.t.mu.Unlock()
	defer func() {
		h.t.mu.Lock()
		delete(h.t.claims, c)
		h.t.mu.Unlock()
	}()

	out := make(chan *sarama.ConsumerMessage)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(out)
		for m := range claim.Messages() {
			if !h.t.hand(c) {
				continue // not handed out: not committed, fetched again after restart
			}
			select {
			case out <- m:
			case <-h.t.stop:
				c.handed.Add(-1)
			case <-done:
				return
			}
		}
	}()
	return h.ConsumerGroupHandler.ConsumeClaim(markCounter{ConsumerGroupSession: sess, c: c}, trackedClaim{ConsumerGroupClaim: claim, out: out})
}

type trackedClaim struct {
	sarama.ConsumerGroupClaim
	out chan *sarama.ConsumerMessage
}

func (c trackedClaim) Messages() <-chan *sarama.ConsumerMessage { return c.out }

type markCounter struct {
	sarama.ConsumerGroupSession
	c *claimCount
}

func (s markCounter) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	s.ConsumerGroupSession.MarkMessage(msg, metadata)
	s.c.marked.Add(1)
}
