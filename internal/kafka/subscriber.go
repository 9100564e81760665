package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/internal/transport"
)

// partitionSubscriber is a handler's subscriber by partition
// (kafka.consume: partition): watermill-kafka's, created lazily (the
// brokers are known after Start), draining natively (drainTracker).
// Draining needs a consumer group: without one (group ""), Drain returns
// at once and Close discards what is in flight.
type partitionSubscriber struct {
	k       *Transport
	group   string
	tracker *drainTracker

	mu     sync.Mutex
	subs   []*wmkafka.Subscriber
	closed bool
}

var _ transport.Subscriber = (*partitionSubscriber)(nil)

func (s *partitionSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sc, err := saramaConfig(s.k.cfg, s.k.conn)
	if err != nil {
		return nil, err
	}
	// NewSubscriber does no I/O: check, create and record under one lock,
	// so a concurrent Close cannot miss the new subscriber.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("kafka subscriber closed")
	}
	sub, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
		Brokers:               s.k.Brokers(),
		Unmarshaler:           trackingUnmarshaler{s.tracker},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         s.group,
		Tracer:                tracer{s.tracker},
	}, s.k.wlog)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("kafka subscriber %s: %w", s.group, err)
	}
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	// A Close from here on closes sub, and its Subscribe then fails.
	return sub.Subscribe(ctx, topic)
}

func (s *partitionSubscriber) Drain(ctx context.Context) error { return s.tracker.Drain(ctx) }

// Joined reports whether the subscriber's consumer group was joined (its
// partitions assigned); it is false during a rebalance.
func (s *partitionSubscriber) Joined() error {
	if s.group == "" || s.tracker.sessions.Load() > 0 {
		return nil
	}
	return fmt.Errorf("consumer group %s: not joined (starting or rebalancing)", s.group)
}

func (s *partitionSubscriber) Close() error {
	s.tracker.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, sub := range s.subs {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}
