package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/registry"
	"github.com/eventfx/eventfx/schema"
)

// avroOrder is a 10-field order event, as BenchmarkCodec's.
type avroOrder struct {
	ID         string  `avro:"id" json:"id"`
	Customer   string  `avro:"customer" json:"customer"`
	Email      string  `avro:"email" json:"email"`
	Amount     int64   `avro:"amount" json:"amount"`
	Currency   string  `avro:"currency" json:"currency"`
	Items      int32   `avro:"items" json:"items"`
	Express    bool    `avro:"express" json:"express"`
	Weight     float64 `avro:"weight" json:"weight"`
	Country    string  `avro:"country" json:"country"`
	PlacedAtMs int64   `avro:"placed_at_ms" json:"placed_at_ms"`
}

var benchOrder = avroOrder{ID: "o-123456", Customer: "customer-42", Email: "ada@example.com",
	Amount: 4200, Currency: "EUR", Items: 3, Express: true, Weight: 1.25, Country: "DE", PlacedAtMs: 1796300000000}

const avroOrderSchema = `{"type":"record","name":"BenchOrder","namespace":"shop","fields":[
 {"name":"id","type":"string"},{"name":"customer","type":"string"},{"name":"email","type":"string"},
 {"name":"amount","type":"long"},{"name":"currency","type":"string"},{"name":"items","type":"int"},
 {"name":"express","type":"boolean"},{"name":"weight","type":"double"},{"name":"country","type":"string"},
 {"name":"placed_at_ms","type":"long"}]}`

// consumeEventfxAvro is consumeEventfx with a typed handler whose events
// are Avro, decoded by the schema codec (its cache warm: the schema was
// fetched before the timer started), on b.N records of one framed value.
func consumeEventfxAvro(b *testing.B, mode string, c *counter) {
	codec, cfg := avroCodec(b, mode)
	value, err := codec.MarshalTopic("bench-avro", benchOrder)
	if err != nil {
		b.Fatal(err)
	}
	var warm avroOrder
	if err := codec.Unmarshal(value, &warm); err != nil {
		b.Fatal(err)
	}
	consumeTyped(b, cfg, produceValue(b, b.N, benchKeys, value), codec, c)
}

// consumeEventfxJSON is consumeEventfxAvro with the same event in JSON
// (the default codec): what decoding into a typed handler costs anyway.
func consumeEventfxJSON(b *testing.B, mode string, c *counter) {
	value, err := handlers.JSON{}.Marshal(benchOrder)
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(brokerAddr)
	cfg.Kafka.Consume = mode
	consumeTyped(b, cfg, produceValue(b, b.N, benchKeys, value), handlers.JSON{}, c)
}

// avroCodec starts a registry of the benchmark's own and returns a codec of
// avroOrder on it, with the service config that names the registry.
func avroCodec(b *testing.B, mode string) (*schema.Codec, config.Config) {
	srv, err := registry.Start("127.0.0.1:0", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	cfg := benchConfig(brokerAddr)
	cfg.Kafka.Consume = mode
	cfg.SchemaRegistry.URL = srv.URL()
	reg, err := schema.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	codec, err := schema.NewCodec(reg, schema.Avro[avroOrder](avroOrderSchema))
	if err != nil {
		b.Fatal(err)
	}
	return codec, cfg
}

// consumeTyped consumes topic's b.N records with a typed handler of
// avroOrder decoded by codec.
func consumeTyped(b *testing.B, cfg config.Config, topic string, codec handlers.Codec, c *counter) {
	b.ReportAllocs()
	b.ResetTimer()
	startApp(b,
		app.Core(cfg), app.KafkaModule, app.SubscriberModule,
		handlers.Register(handlers.New("bench", topic, func(_ context.Context, o avroOrder) error {
			if o.Amount == 4200 {
				c.add(1)
			}
			return nil
		}, handlers.WithCodec(codec))),
	)
	c.wait(b, 5*time.Minute)
	b.StopTimer()
	c.reportSteady(b)
}
