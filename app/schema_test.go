package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/eventfxtest"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/registry"
	"github.com/eventfx/eventfx/schema"
)

const (
	placedAvsc = `{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[
	  {"name":"id","type":"string"},{"name":"amount","type":"long"}]}`
	paidAvsc = `{"type":"record","name":"PaymentCaptured","namespace":"shop","fields":[
	  {"name":"order_id","type":"string"},{"name":"amount","type":"long"}]}`
)

type placed struct {
	ID     string `avro:"id"`
	Amount int64  `avro:"amount"`
}

type paid struct {
	OrderID string `avro:"order_id"`
	Amount  int64  `avro:"amount"`
}

func avroCodec(reg *schema.Registry) (*schema.Codec, error) {
	return schema.NewCodec(reg, schema.Avro[placed](placedAvsc), schema.Avro[paid](paidAvsc))
}

// An emitting handler reads Avro events and emits Avro events through the
// registry, on the embedded broker; the bad values are poisoned at once,
// each with its reason, and nothing else is lost.
func TestAvroCodecThroughHandlersAndPublisher(t *testing.T) {
	t.Parallel()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	in, out := kafkatest.Unique("orders"), kafkatest.Unique("payments")
	var reg *schema.Registry
	env := eventfxtest.New(t,
		eventfxtest.Config(func(c *config.Config) { c.SchemaRegistry.URL = srv.URL() }),
		eventfxtest.Modules(app.SchemaModule, fx.Populate(&reg),
			fx.Provide(handlers.AsHandler(func(reg *schema.Registry) (handlers.Handler, error) {
				codec, err := avroCodec(reg)
				return handlers.NewEmitting("billing", in, out, func(_ context.Context, o placed) ([]paid, error) {
					return []paid{{OrderID: o.ID, Amount: o.Amount}}, nil
				}, handlers.WithCodec(codec)), err
			}))))
	codec, err := avroCodec(reg)
	require.NoError(t, err)
	pub := env.Publisher().WithCodec(codec)
	for _, id := range []string{"o-1", "o-2"} {
		m, err := pub.PublishEvent(t.Context(), in, placed{ID: id, Amount: 10})
		require.NoError(t, err)
		assert.Equal(t, schema.ContentTypeAvro, m.Metadata.Get("content_type"))
	}

	got := map[string]int64{}
	for _, m := range env.Messages(out, 2) {
		var p paid
		require.NoError(t, codec.Unmarshal(m.Payload, &p))
		got[p.OrderID] = p.Amount
	}
	assert.Equal(t, map[string]int64{"o-1": 10, "o-2": 10}, got)
	subjects, err := reg.Client().Subjects(t.Context())
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{in + "-value", out + "-value"}, subjects)

	good, err := codec.MarshalTopic(in, placed{ID: "o-3", Amount: 1})
	require.NoError(t, err)
	env.PublishRaw(in, []byte(`{"id":"o-4","amount":1}`))
	env.PublishRaw(in, append([]byte{0, 0, 0, 0x30, 0x39}, good[5:]...))
	env.PublishRaw(in, good[:len(good)-1])
	wrongType := append([]byte(nil), good...)
	paidID, _, err := schema.ParseFrame(env.Messages(out, 1)[0].Payload)
	require.NoError(t, err)
	wrongType[4] = byte(paidID) // a PaymentCaptured schema: not readable as OrderPlaced
	env.PublishRaw(in, wrongType)

	reasons := map[string]bool{}
	for _, p := range env.Poisoned(4) {
		assert.Equal(t, 1, p.Attempts, "permanent: poisoned on the first attempt: %s", p.Reason)
		assert.Equal(t, "billing", p.Handler)
		reasons[p.Reason] = true
	}
	want := []string{
		"not Schema Registry framing: first byte 0x7b, want the magic byte 0",
		"schema ID 12345 is unknown to the registry",
		"(subject " + in + "-value)",
		"(subject " + out + "-value)",
	}
	for _, w := range want {
		found := false
		for r := range reasons {
			found = found || strings.Contains(r, w)
		}
		assert.True(t, found, "a reason containing %q among %v", w, reasons)
	}
}

// A registry that does not answer is transient: retried, then poisoned.
func TestUnreachableRegistryIsRetriedThenPoisoned(t *testing.T) {
	t.Parallel()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	url := srv.URL()
	srv.Close()
	in := kafkatest.Unique("orders")
	env := eventfxtest.New(t,
		eventfxtest.Config(func(c *config.Config) {
			c.SchemaRegistry.URL = url
			c.Retry.MaxRetries = 2
		}),
		eventfxtest.Modules(app.SchemaModule,
			fx.Provide(handlers.AsHandler(func(reg *schema.Registry) (handlers.Handler, error) {
				codec, err := avroCodec(reg)
				return handlers.New("billing", in, func(context.Context, placed) error { return nil }, handlers.WithCodec(codec)), err
			}))))
	env.PublishRaw(in, []byte{0, 0, 0, 0, 1, 2, 'o', 2})
	p := env.Poisoned(1)[0]
	assert.Equal(t, 3, p.Attempts, "retried: %s", p.Reason)
	assert.Contains(t, p.Reason, "schema registry at "+url)
}

func TestSchemaModuleStartsAndStops(t *testing.T) {
	t.Parallel()
	var reg *schema.Registry
	fxtest.New(t, app.Core(config.Config{}), app.SchemaModule, fx.Populate(&reg)).RequireStart().RequireStop()
	assert.Contains(t, reg.URL(), "http://127.0.0.1:", "the in-process registry with an embedded broker")

	err := fx.New(app.Core(config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9092"}}}), app.SchemaModule,
		fx.Populate(&reg), fx.NopLogger).Err()
	assert.ErrorContains(t, err, "schema_registry.url is required")
}

// /readyz names the schema registry when it does not answer, and is ready
// again when it is back.
func TestReadyzReportsTheSchemaRegistry(t *testing.T) {
	t.Parallel()
	b, err := broker.Start(broker.Config{})
	require.NoError(t, err)
	defer b.Close()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	regAddr := strings.TrimPrefix(srv.URL(), "http://")
	cfg := kafkatest.Config(b.Addr())
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.SchemaRegistry.URL = srv.URL()
	var ops *app.HTTPServer
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SchemaModule, app.HTTPModule, fx.Populate(&ops))
	a.RequireStart()
	defer a.RequireStop()
	readyz := "http://" + ops.Addr() + "/readyz"
	last := func() string { _, body := get(t, readyz); return "readyz: " + body }
	kafkatest.Eventually(t, 15*time.Second, func() bool { code, _ := get(t, readyz); return code == http.StatusOK }, last)

	srv.Close()
	kafkatest.Eventually(t, 15*time.Second, func() bool {
		code, body := get(t, readyz)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "schema_registry")
	}, last)

	again, err := registry.Start(regAddr, "")
	require.NoError(t, err)
	defer again.Close()
	kafkatest.Eventually(t, 15*time.Second, func() bool { code, _ := get(t, readyz); return code == http.StatusOK }, last)
}
