package schema_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/testpb"
	"github.com/eventfx/eventfx/schema"
)

// benchOrder is a 10-field order event.
type benchOrder struct {
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

const benchAvsc = `{"type":"record","name":"BenchOrder","namespace":"shop","fields":[
 {"name":"id","type":"string"},{"name":"customer","type":"string"},{"name":"email","type":"string"},
 {"name":"amount","type":"long"},{"name":"currency","type":"string"},{"name":"items","type":"int"},
 {"name":"express","type":"boolean"},{"name":"weight","type":"double"},{"name":"country","type":"string"},
 {"name":"placed_at_ms","type":"long"}]}`

const benchJSONSchema = `{"title":"shop.BenchOrder","type":"object","properties":{
 "id":{"type":"string"},"customer":{"type":"string"},"email":{"type":"string"},"amount":{"type":"integer"},
 "currency":{"type":"string"},"items":{"type":"integer"},"express":{"type":"boolean"},"weight":{"type":"number"},
 "country":{"type":"string"},"placed_at_ms":{"type":"integer"}},
 "required":["id","customer","amount","currency"]}`

var benchValue = benchOrder{
	ID: "o-123456", Customer: "customer-42", Email: "ada@example.com", Amount: 4200, Currency: "EUR",
	Items: 3, Express: true, Weight: 1.25, Country: "DE", PlacedAtMs: 1796300000000,
}

// BenchmarkCodec encodes and decodes one 10-field order event per
// operation, with a warm schema cache (the registry is asked once, before
// the timer starts).
func BenchmarkCodec(b *testing.B) {
	reg := newRegistry(b, nil)
	avroCodec, err := schema.NewCodec(reg, schema.Avro[benchOrder](benchAvsc))
	require.NoError(b, err)
	jsonSchemaCodec, err := schema.NewCodec(reg, schema.JSONSchema[benchOrder](benchJSONSchema))
	require.NoError(b, err)
	protobufCodec, err := schema.NewCodec(reg, schema.Protobuf[*testpb.BenchOrder]())
	require.NoError(b, err)
	codecs := []struct {
		name  string
		codec handlers.Codec
	}{
		{"json", handlers.JSON{}},
		{"avro", avroCodec},
		{"jsonschema", jsonSchemaCodec},
	}
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			tm, _ := c.codec.(handlers.TopicMarshaler)
			encode := func() ([]byte, error) {
				if tm != nil {
					return tm.MarshalTopic("bench-"+c.name, benchValue)
				}
				return c.codec.Marshal(benchValue)
			}
			payload, err := encode() // registers, fills the caches
			require.NoError(b, err)
			var out benchOrder
			require.NoError(b, c.codec.Unmarshal(payload, &out))
			require.Equal(b, benchValue, out)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p, err := encode()
				if err != nil {
					b.Fatal(err)
				}
				if err := c.codec.Unmarshal(p, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(payload)), "bytes/value")
		})
	}
	b.Run("protobuf", func(b *testing.B) {
		in := &testpb.BenchOrder{Id: benchValue.ID, Customer: benchValue.Customer, Email: benchValue.Email,
			Amount: benchValue.Amount, Currency: benchValue.Currency, Items: benchValue.Items, Express: benchValue.Express,
			Weight: benchValue.Weight, Country: benchValue.Country, PlacedAtMs: benchValue.PlacedAtMs}
		payload, err := protobufCodec.MarshalTopic("bench-protobuf", in)
		require.NoError(b, err)
		out := &testpb.BenchOrder{}
		require.NoError(b, protobufCodec.Unmarshal(payload, out))
		require.True(b, proto.Equal(in, out))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			p, err := protobufCodec.MarshalTopic("bench-protobuf", in)
			if err != nil {
				b.Fatal(err)
			}
			out := &testpb.BenchOrder{} // a new event per message, as a typed handler gets
			if err := protobufCodec.Unmarshal(p, out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(payload)), "bytes/value")
	})
}
