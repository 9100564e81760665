package routing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/internal/transport"
)

func TestNewRefusesHandlersThatEmitIntoALoop(t *testing.T) {
	type event struct{}
	emit := func(context.Context, event) ([]event, error) { return nil, nil }
	cfg := config.Config{}.WithDefaults()
	_, err := routing.New(routing.Params{
		Config: cfg,
		Handlers: []handlers.Handler{
			handlers.NewEmitting("echo", "orders", "orders", emit),
			handlers.NewEmitting("leak", "orders", cfg.Poison.Topic, emit),
			handlers.NewEmitting("fine", "orders", "payments", emit),
		},
		NewSubscriber: func(transport.Spec) (transport.Subscriber, error) {
			t.Fatal("no subscriber is made for a service with wiring mistakes")
			return nil, nil
		},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `handler "echo" emits to "orders", the topic it consumes`)
	assert.Contains(t, err.Error(), `handler "leak" emits to "eventfx.poison", the poison topic`)
	assert.NotContains(t, err.Error(), `"fine"`)
}
