package router_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/router"
)

// splitter is a router.Splitter whose parts hand out the messages the test
// sends on their channels.
type splitter struct {
	mu     sync.Mutex
	chans  []chan *message.Message
	closed int
}

func (s *splitter) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return nil, errors.New("the router subscribes to the parts of a Splitter")
}

func (s *splitter) Close() error { return nil }

func (s *splitter) Split(n int) []message.Subscriber {
	subs := make([]message.Subscriber, n)
	for i := range subs {
		s.chans = append(s.chans, make(chan *message.Message))
		subs[i] = splitterPart{s, s.chans[i]}
	}
	return subs
}

type splitterPart struct {
	s  *splitter
	ch chan *message.Message
}

func (p splitterPart) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return p.ch, nil
}

func (p splitterPart) Close() error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if p.s.closed == 0 {
		for _, ch := range p.s.chans {
			close(ch)
		}
	}
	p.s.closed++
	return nil
}

// TestSplitterGetsAWatermillHandlerPerProcessor: a subscriber that can
// split is consumed by one Watermill handler per processor, each running
// the handler's chain, which names the handler by its own name.
func TestSplitterGetsAWatermillHandlerPerProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	sub := &splitter{}
	var mu sync.Mutex
	names := map[string]int{}
	h := handlers.Handler{Name: "relay", Topic: "in", Func: func(msg *message.Message) ([]*message.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		names[handlers.HandlerName(msg.Context())]++
		return nil, nil
	}}
	r, err := router.New(router.Params{
		Config:        config.Config{Service: "svc"}.WithDefaults(),
		Logger:        quiet,
		Handlers:      []handlers.Handler{h},
		NewSubscriber: func(router.SubscriberSpec) (message.Subscriber, error) { return sub, nil },
		Publisher:     &recorder{},
	})
	require.NoError(t, err)
	require.Len(t, sub.chans, 3, "one part per processor")
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("router not running")
	}

	var msgs []*message.Message
	for i, ch := range sub.chans {
		for j := range 5 {
			msg := message.NewMessage(strconv.Itoa(i*10+j), nil)
			msgs = append(msgs, msg)
			ch <- msg
		}
	}
	for _, msg := range msgs {
		select {
		case <-msg.Acked():
		case <-msg.Nacked():
			t.Fatalf("message %s nacked", msg.UUID)
		case <-time.After(10 * time.Second):
			t.Fatalf("message %s not acked", msg.UUID)
		}
	}
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, <-done)
	assert.Equal(t, map[string]int{"relay": 15}, names, "handler names seen by the handler")
	sub.mu.Lock()
	defer sub.mu.Unlock()
	assert.Equal(t, 3, sub.closed, "every part closed")
}
