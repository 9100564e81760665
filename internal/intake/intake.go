// Package intake lets several Watermill handlers take their messages from
// one subscription: eventfx's router runs one per processor for each
// handler (see router.New), and the benchmarks give the bare router the
// same intake.
package intake

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Share returns n subscribers, one per Watermill handler, that share sub's
// one subscription: the first Subscribe subscribes, the others get the
// same channel (and must name the same topic); the first Close closes sub.
func Share(sub message.Subscriber, n int) []message.Subscriber {
	s := &shared{sub: sub}
	subs := make([]message.Subscriber, n)
	for i := range subs {
		subs[i] = s
	}
	return subs
}

type shared struct {
	sub message.Subscriber

	mu     sync.Mutex
	topic  string
	ch     <-chan *message.Message
	closed bool
}

func (s *shared) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		ch, err := s.sub.Subscribe(ctx, topic)
		if err != nil {
			return nil, err
		}
		s.topic, s.ch = topic, ch
	} else if topic != s.topic {
		return nil, fmt.Errorf("subscribe to %s: the handler's subscription is to %s", topic, s.topic)
	}
	return s.ch, nil
}

func (s *shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.sub.Close()
}
