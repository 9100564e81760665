package schema_test

import (
	"errors"
	"testing"

	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/testpb"
	"github.com/eventfx/eventfx/schema"
)

// FuzzDecode feeds any payload to every codec and to DecodeJSON: nothing
// panics, and an error is never the transient kind (the registry answers
// throughout), so a bad value is always poisoned at once.
func FuzzDecode(f *testing.F) {
	reg := newRegistry(f, nil)
	avroCodec, err := schema.NewCodec(reg, schema.Avro[OrderV2](orderV2))
	if err != nil {
		f.Fatal(err)
	}
	jsonCodec, err := schema.NewCodec(reg, schema.JSONSchema[OrderV1](orderJSONSchema))
	if err != nil {
		f.Fatal(err)
	}
	protoCodec, err := schema.NewCodec(reg, schema.Protobuf[*testpb.Order](), schema.Protobuf[*testpb.Payment]())
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{nil, {0}, {0, 0, 0, 0, 1}, []byte(`{"id":"x"}`), {0, 0, 0, 0, 9, 1, 2}}
	for _, enc := range []func() ([]byte, error){
		func() ([]byte, error) {
			return avroCodec.MarshalTopic("f", OrderV2{ID: "o", Amount: 1, Currency: "EUR"})
		},
		func() ([]byte, error) { return jsonCodec.MarshalTopic("g", OrderV1{ID: "o", Amount: 1}) },
		func() ([]byte, error) { return protoCodec.MarshalTopic("h", &testpb.Payment{OrderId: "o", Amount: 1}) },
	} {
		b, err := enc()
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b, b[:len(b)-1], append(append([]byte(nil), b...), 0xff))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var a OrderV2
		var j OrderV1
		var p *testpb.Order
		for _, err := range []error{
			avroCodec.Unmarshal(payload, &a),
			jsonCodec.Unmarshal(payload, &j),
			protoCodec.Unmarshal(payload, &p),
			func() error { _, err := reg.DecodeJSON(payload); return err }(),
		} {
			if errors.Is(err, handlers.ErrCodecUnavailable) {
				t.Fatalf("a bad value is not a registry outage: %v", err)
			}
		}
	})
}
