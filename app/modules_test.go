package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/transport"
)

func TestModulesStartAndStop(t *testing.T) {
	addr := kafkatest.Broker(t)
	noop := handlers.New("noop", "events", func(context.Context, Order) error { return nil })
	tests := []struct {
		name    string
		cfg     config.Config
		modules fx.Option
	}{
		{"kafka transport", kafkatest.Config(addr), app.KafkaModule},
		{"kafka transport on the embedded broker", config.Config{}.WithDefaults(), app.KafkaModule},
		{"memory transport", config.Config{}.WithDefaults(), app.MemoryModule},
		{"publisher", kafkatest.Config(addr), fx.Options(app.KafkaModule, app.PublisherModule, fx.Invoke(func(*app.Publisher) {}))},
		{"subscriber on kafka", kafkatest.Config(addr), fx.Options(app.KafkaModule, app.SubscriberModule, handlers.Register(noop))},
		{"subscriber in memory", config.Config{}.WithDefaults(), fx.Options(app.MemoryModule, app.SubscriberModule, handlers.Register(noop))},
		{"subscriber without handlers", kafkatest.Config(addr), fx.Options(app.KafkaModule, app.SubscriberModule)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fxtest.New(t, app.Core(tt.cfg), tt.modules)
			a.RequireStart().RequireStop()
		})
	}
}

func TestInvalidConfigFailsFxNewListingEveryField(t *testing.T) {
	cfg := config.Config{Kafka: config.Kafka{InitialOffset: "latest", Acks: "some"}, Retry: config.Retry{Jitter: 3}}
	err := fx.New(app.Core(cfg), fx.NopLogger).Err()
	require.Error(t, err)
	for _, path := range []string{"kafka.initial_offset", "kafka.acks", "retry.jitter"} {
		assert.Contains(t, err.Error(), path)
	}
}

func TestPublisherPutsIDKeyAndCorrelationIDOnTheWire(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	var pub *app.Publisher
	fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, fx.Populate(&pub)).RequireStart().RequireStop()
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, fx.Populate(&pub))
	a.RequireStart()
	defer a.RequireStop()
	topic := kafkatest.Unique("orders")
	ctx := handlers.ContextWithCorrelationID(context.Background(), "corr-from-ctx")

	_, err := pub.Publish(ctx, topic, []byte(`{"id":"o1"}`), app.WithKey("customer-1"), app.WithID("id-1"))
	require.NoError(t, err)
	m, err := pub.PublishEvent(context.Background(), topic, Order{ID: "o2"}, app.WithCorrelationID("corr-explicit"))
	require.NoError(t, err)

	recs := kafkatest.Read(t, addr, topic, 2, 10*time.Second)
	byID := map[string]map[string]string{}
	keys := map[string][]byte{}
	for _, r := range recs {
		h := kafkatest.Headers(r)
		byID[h["_watermill_message_uuid"]] = h
		keys[h["_watermill_message_uuid"]] = r.Key
		assert.NotContains(t, h, "_eventfx_key", "the key travels as the Kafka key, not a header")
	}
	require.Contains(t, byID, "id-1", kafkatest.Describe(recs))
	require.Contains(t, byID, m.UUID, kafkatest.Describe(recs))
	assert.Equal(t, "corr-from-ctx", byID["id-1"]["correlation_id"])
	assert.Equal(t, []byte("customer-1"), keys["id-1"])
	assert.Equal(t, "corr-explicit", byID[m.UUID]["correlation_id"])
	assert.Nil(t, keys[m.UUID], "an unkeyed message has a null key")
	assert.Equal(t, "application/json", byID[m.UUID]["content_type"])

	_, err = pub.Publish(ctx, cfg.Poison.Topic, []byte("x"))
	assert.ErrorContains(t, err, "poison topic")
	_, err = pub.Publish(ctx, "bad topic!", []byte("x"))
	assert.Error(t, err)
}

func TestPublishMessagesIsOneBatchAndNamesEachMessageNotWritten(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	var pub *app.Publisher
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, fx.Populate(&pub))
	a.RequireStart()
	defer a.RequireStop()
	topic := kafkatest.Unique("orders")
	ctx := context.Background()

	batch := make([]*message.Message, 500)
	for i := range batch {
		batch[i] = message.NewMessage(fmt.Sprintf("ok-%d", i), []byte(`{}`))
	}
	require.NoError(t, pub.PublishMessages(ctx, topic, batch...))
	assert.Len(t, kafkatest.Read(t, addr, topic, 500, 10*time.Second), 500, "every message acknowledged")

	// The second message can never fit (over the broker's max.message.bytes).
	mixed := []*message.Message{
		message.NewMessage("small-1", []byte(`{}`)),
		message.NewMessage("huge", make([]byte, 2<<20)),
		message.NewMessage("small-2", []byte(`{}`)),
	}
	other := kafkatest.Unique("orders")
	err := pub.PublishMessages(ctx, other, mixed...)
	var pe *app.PublishError
	require.ErrorAs(t, err, &pe)
	require.Len(t, pe.Failed, 1, "only the huge message failed: %v", err)
	assert.Equal(t, 1, pe.Failed[0].Index)
	assert.Equal(t, "huge", pe.Failed[0].ID)
	assert.Equal(t, 3, pe.Total)
	assert.True(t, kafka.TooLarge(err))
	assert.ErrorContains(t, err, "1 of 3 message(s) not written to "+other+"; huge: ")
	ids := map[string]bool{}
	for _, r := range kafkatest.Read(t, addr, other, 2, 10*time.Second) {
		ids[kafkatest.Headers(r)["_watermill_message_uuid"]] = true
	}
	assert.Equal(t, map[string]bool{"small-1": true, "small-2": true}, ids, "the others were written")
}

func TestRouterDyingInBackgroundShutsTheAppDownWithAnError(t *testing.T) {
	var tr transport.Transport
	noop := handlers.New("noop", "events", func(context.Context, Order) error { return nil })
	a := fxtest.New(t, app.Core(config.Config{}.WithDefaults()), app.MemoryModule, app.SubscriberModule,
		handlers.Register(noop), fx.Populate(&tr))
	a.RequireStart()
	defer a.RequireStop()

	require.NoError(t, tr.Close()) // every subscription ends: the router stops by itself

	select {
	case sig := <-a.Wait():
		assert.Equal(t, 1, sig.ExitCode)
	case <-time.After(10 * time.Second):
		t.Fatal("app kept running after its router died")
	}
}
