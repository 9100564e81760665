package transport

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/eventfx/eventfx/internal/wmlog"
)

// Memory is the in-memory transport (Watermill's gochannel), for unit tests
// of a team's own logic. It has no consumer groups (every handler gets
// every message), no partitions and no durability; real behaviour is tested
// on the embedded broker.
type Memory struct {
	ch   *gochannel.GoChannel
	once sync.Once
}

var _ Transport = (*Memory)(nil)

// NewMemory returns an in-memory transport. Subscribers see the messages
// published before they subscribed, as a group starting at the oldest
// offset would.
func NewMemory(logger *slog.Logger) *Memory {
	return &Memory{ch: gochannel.NewGoChannel(gochannel.Config{Persistent: true}, wmlog.New(logger))}
}

// Publisher returns the shared publisher; its Close is a no-op.
func (m *Memory) Publisher() Publisher { return unclosable{m.ch} }

// Subscriber returns a subscriber that drains at shutdown (a gate). Its
// Close ends its own subscriptions; the shared channels stay open until
// Close.
func (m *Memory) Subscriber(Spec) (Subscriber, error) {
	return Gate(unclosable{m.ch}), nil
}

// Brokers is nil: there are none.
func (m *Memory) Brokers() []string { return nil }

// Start does nothing.
func (m *Memory) Start(context.Context) error { return nil }

// Ping is nil: there is nothing to reach.
func (m *Memory) Ping(context.Context) error { return nil }

// System is "": in-memory publishes are not messaging spans.
func (m *Memory) System() string { return "" }

// Close closes the channels once.
func (m *Memory) Close() error {
	var err error
	m.once.Do(func() { err = m.ch.Close() })
	return err
}

// unclosable shields a shared publisher (and subscriber) from the Close
// of one of its users; its owner closes it once, last.
type unclosable struct{ pubsub }

type pubsub interface {
	message.Publisher
	Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error)
}

func (unclosable) Close() error { return nil }

// PublishContext publishes unless ctx has ended: an in-memory publish does
// not wait for anyone.
func (u unclosable) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return u.Publish(topic, msgs...)
}
