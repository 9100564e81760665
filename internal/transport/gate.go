package transport

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Gate wraps a subscriber that cannot drain by itself (the in-memory one,
// a test's) so it can: Drain stops forwarding messages and waits until every
// forwarded message was acked or nacked. Messages received after Drain are
// left unacknowledged. The Kafka subscribers drain natively.
func Gate(s message.Subscriber) Subscriber {
	return &gate{Subscriber: s, stop: make(chan struct{}), idle: make(chan struct{}, 1), closing: make(chan struct{})}
}

type gate struct {
	message.Subscriber
	stop     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	inflight int
	idle     chan struct{} // signalled when inflight drops to 0

	closing   chan struct{}
	closeOnce sync.Once
	outputs   sync.WaitGroup // one per Subscribe, done when its output is closed
}

func (g *gate) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-g.closing:
		return nil, errors.New("subscriber closed")
	default:
	}
	in, err := g.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	g.outputs.Add(1)
	go func() {
		defer g.outputs.Done()
		defer close(out)
		for {
			var msg *message.Message
			var ok bool
			select {
			case msg, ok = <-in:
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			case <-g.closing:
				return
			}
			if !g.take() {
				continue
			}
			select {
			case out <- msg:
				go func() {
					select {
					case <-msg.Acked():
					case <-msg.Nacked():
					}
					g.release()
				}()
			case <-g.stop:
				g.release()
			case <-g.closing:
				g.release()
				return
			}
		}
	}()
	return out, nil
}

// Close closes every output channel, waits until they are closed, then
// closes the wrapped subscriber.
func (g *gate) Close() error {
	g.closeOnce.Do(func() { close(g.closing) })
	g.outputs.Wait()
	return g.Subscriber.Close()
}

// take counts one more message in flight, unless draining started.
func (g *gate) take() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.stop:
		return false
	default:
	}
	g.inflight++
	return true
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	if g.inflight == 0 {
		select {
		case g.idle <- struct{}{}:
		default:
		}
	}
}

// Joined is nil: a gate has no consumer group to join.
func (g *gate) Joined() error { return nil }

func (g *gate) Drain(ctx context.Context) error {
	g.mu.Lock()
	g.once.Do(func() { close(g.stop) })
	n := g.inflight
	g.mu.Unlock()
	if n == 0 {
		return nil
	}
	for {
		select {
		case <-g.idle:
			g.mu.Lock()
			n = g.inflight
			g.mu.Unlock()
			if n == 0 {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
