package keyorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Subscriber is a Watermill message.Subscriber that consumes in a Kafka
// consumer group, processing the keys of a partition in parallel while each
// key's records are delivered in order, one at a time (see the package
// documentation). Its methods are safe for concurrent use.
type Subscriber struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	subs   []*subscription

	closeOnce sync.Once
	closeErr  error
}

var _ message.Subscriber = (*Subscriber)(nil)

// New validates cfg and returns a subscriber. It does no I/O; Subscribe
// connects.
func New(cfg Config) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("keyorder config: %w", err)
	}
	cfg.setDefaults()
	return &Subscriber{cfg: cfg, log: cfg.Logger.With("group", cfg.Group)}, nil
}

// Subscribe joins the consumer group on topic with a client of its own and
// returns the channel of its messages: unbuffered, closed once the
// subscription has stopped. Cancelling ctx stops the subscription as Close
// does (in-flight messages get up to Config.RevokeDrain); ctx's values are
// in every message's context, its cancellation is not. Several goroutines
// may receive from the channel; Config.MaxInFlight bounds them together.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic == "" {
		return nil, errors.New("keyorder subscribe: empty topic")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("keyorder subscribe to %s: subscriber closed", topic)
	}
	sub, err := newSubscription(ctx, s, topic)
	if err != nil {
		return nil, fmt.Errorf("keyorder subscribe to %s: %w", topic, err)
	}
	s.subs = append(s.subs, sub)
	sub.start(ctx)
	return sub.out, nil
}

// Drain stops handing out messages and waits until every message handed
// out was acked, or nacked (then it is not sent again), and the done
// offsets are committed. If ctx ends first, the contexts of the messages
// still in flight are cancelled and Drain returns ctx's error. Messages
// not handed out are delivered again after a restart. Close follows.
func (s *Subscriber) Drain(ctx context.Context) error {
	subs := s.subscriptions()
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() { errs[i] = sub.drain(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("keyorder drain of group %s: %w", s.cfg.Group, err)
	}
	return nil
}

// Joined reports nil while every subscription's group member has its
// partitions assigned, and an error before that and during a rebalance.
func (s *Subscriber) Joined() error {
	subs := s.subscriptions()
	if len(subs) == 0 {
		return fmt.Errorf("consumer group %s: not joined (starting or rebalancing)", s.cfg.Group)
	}
	for _, sub := range subs {
		if !sub.isJoined() {
			return fmt.Errorf("consumer group %s: not joined (starting or rebalancing)", s.cfg.Group)
		}
	}
	return nil
}

// Close stops every subscription: it stops handing out messages, waits up
// to Config.RevokeDrain for those in flight (then cancels their contexts),
// commits what is done synchronously, leaves the group and closes the
// output channels. It is idempotent; later calls return the first result.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		subs := s.subscriptions()
		errs := make([]error, len(subs))
		var wg sync.WaitGroup
		for i, sub := range subs {
			wg.Go(func() { errs[i] = sub.stop() })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("keyorder close of group %s: %w", s.cfg.Group, err)
		}
	})
	return s.closeErr
}

// Stats is a snapshot of a subscriber's consumption, for metrics and tests.
type Stats struct {
	// Outstanding counts the records polled and not done yet.
	Outstanding int
	// InFlight counts the messages handed out and not yet acked or
	// nacked.
	InFlight int
	// Lanes counts the lanes with work, each running one goroutine.
	Lanes int
	// Partitions describes every assigned partition.
	Partitions []PartitionStats
}

// PartitionStats describes one assigned partition.
type PartitionStats struct {
	Topic     string
	Partition int32
	// Window counts the polled records from the first one not done: the
	// records the partition's commit point waits on or holds.
	Window int
	// Held counts the records of Window already done, held behind the
	// first one not done.
	Held int
	// Paused is true while fetching is paused because Held reached
	// Config.PartitionWindow.
	Paused bool
	// Committed is the last committed offset, -1 without a commit.
	Committed int64
}

// Stats returns a snapshot of the subscriber's consumption.
func (s *Subscriber) Stats() Stats {
	var st Stats
	for _, sub := range s.subscriptions() {
		sub.addStats(&st)
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStats) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return st
}

func (s *Subscriber) subscriptions() []*subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subs)
}

// remove forgets a stopped subscription.
func (s *Subscriber) remove(sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = slices.DeleteFunc(s.subs, func(x *subscription) bool { return x == sub })
}
