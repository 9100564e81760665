package routing_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/internal/transport"
)

// channelSubscriber hands out the messages the test sends on its channel,
// and counts its Subscribe and Close calls. Like Watermill's subscribers,
// it closes its channel when the Subscribe context ends: the router
// cancels it at Close, and may not call Close.
type channelSubscriber struct {
	ch                 chan *message.Message
	subscribes, closes atomic.Int32
	closeOnce          sync.Once
}

func (s *channelSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	s.subscribes.Add(1)
	go func() {
		<-ctx.Done()
		s.closeOnce.Do(func() { close(s.ch) })
	}()
	return s.ch, nil
}

func (s *channelSubscriber) Close() error {
	s.closes.Add(1)
	s.closeOnce.Do(func() { close(s.ch) })
	return nil
}

// run runs r until the test stops it with the returned function, which
// shuts r down and fails the test on errors.
func run(t *testing.T, r *routing.Router) (shutdown func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router not running")
	}
	return func() {
		t.Helper()
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, <-done)
	}
}

// TestHandlerTakesItsMessagesOnEveryProcessor: the router runs a Watermill
// handler per processor on the handler's one subscription, subscribed once
// and closed at shutdown; the handler's chain names the handler by its own name (the
// Watermill handlers are "relay", "relay#2" and "relay#3").
func TestHandlerTakesItsMessagesOnEveryProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	sub := &channelSubscriber{ch: make(chan *message.Message)}
	var mu sync.Mutex
	names := map[string]int{}
	h := handlers.Handler{Name: "relay", Topic: "in", Func: func(msg *message.Message) ([]*message.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		names[handlers.HandlerName(msg.Context())]++
		return nil, nil
	}}
	r, err := routing.New(routing.Params{
		Config:        config.Config{Service: "svc"}.WithDefaults(),
		Logger:        quiet,
		Handlers:      []handlers.Handler{h},
		NewSubscriber: func(transport.Spec) (transport.Subscriber, error) { return transport.Gate(sub), nil },
		Publisher:     &recorder{},
	})
	require.NoError(t, err)
	shutdown := run(t, r)

	var msgs []*message.Message
	for i := range 12 {
		msg := message.NewMessage(strconv.Itoa(i), nil)
		msgs = append(msgs, msg)
		sub.ch <- msg
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
	shutdown()
	assert.Equal(t, map[string]int{"relay": 12}, names, "handler names seen by the handler")
	assert.Equal(t, int32(1), sub.subscribes.Load(), "subscriptions")
	assert.Positive(t, sub.closes.Load(), "subscriber closed at shutdown")
}

// TestIntakeNamesCannotBeHandlerNames: a handler's extra intakes are
// named "<handler>#2", ...; no handler may take such a name.
func TestIntakeNamesCannotBeHandlerNames(t *testing.T) {
	nop := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	_, err := routing.New(routing.Params{
		Config: config.Config{Service: "svc"}.WithDefaults(),
		Logger: quiet,
		Handlers: []handlers.Handler{
			{Name: "relay", Topic: "a", Func: nop},
			{Name: "relay#2", Topic: "b", Func: nop},
		},
		NewSubscriber: func(transport.Spec) (transport.Subscriber, error) {
			return transport.Gate(&channelSubscriber{ch: make(chan *message.Message)}), nil
		},
		Publisher: &recorder{},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `handler "relay#2": name may hold only`)
}
