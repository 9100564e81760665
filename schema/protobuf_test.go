package schema_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/eventfx/eventfx/internal/testpb"
	"github.com/eventfx/eventfx/schema"
)

// orderV1Proto is Order before currency was added.
const orderV1Proto = `syntax = "proto3";
package eventfx.testpb;
message Order {
  string id = 1;
  int64 amount = 2;
  string note = 3;
}`

func TestProtobufRoundTripAndMessageIndexes(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	c, err := schema.NewCodec(reg, schema.Protobuf[*testpb.Order](), schema.Protobuf[*testpb.Payment]())
	require.NoError(t, err)
	assert.Equal(t, schema.ContentTypeProtobuf, c.ContentType())

	order, err := c.MarshalTopic("orders", &testpb.Order{Id: "o-1", Amount: 42, Currency: "USD"})
	require.NoError(t, err)
	assert.Equal(t, byte(0), order[5], "the first message of the file: index [0], one byte")
	var got *testpb.Order // as a typed handler decodes: into a nil message pointer
	require.NoError(t, c.Unmarshal(order, &got))
	assert.True(t, proto.Equal(&testpb.Order{Id: "o-1", Amount: 42, Currency: "USD"}, got), "got %v", got)

	payment, err := c.MarshalTopic("payments", &testpb.Payment{OrderId: "o-1", Amount: 42})
	require.NoError(t, err)
	assert.Equal(t, []byte{2, 2}, payment[5:7], "the second message: indexes [1], zigzag varints as Java writes them")
	var p testpb.Payment
	require.NoError(t, c.Unmarshal(payment, &p))
	assert.Equal(t, "o-1", p.OrderId)

	d, err := reg.DecodeJSON(payment)
	require.NoError(t, err)
	assert.Equal(t, schema.FormatProtobuf, d.Format)
	assert.JSONEq(t, `{"order_id":"o-1","amount":"42"}`, string(d.JSON))

	// A Payment is not an Order.
	var wrong *testpb.Order
	err = c.Unmarshal(payment, &wrong)
	assert.ErrorContains(t, err, "the value is a eventfx.testpb.Payment, not a eventfx.testpb.Order")
	err = c.Unmarshal(append(payment[:5:5], 7), &wrong)
	assert.ErrorContains(t, err, "bad Protobuf message index count")
}

// Values written with the older .proto (no currency) are read by the
// newer generated type: the added field is empty; and the other way round
// the old schema skips the field it does not know.
func TestProtobufEvolution(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	old, err := reg.NewEncoder(t.Context(), "orders", schema.FormatProtobuf, orderV1Proto)
	require.NoError(t, err)
	v1, err := old.EncodeJSON([]byte(`{"id":"o-1","amount":"7","note":"gift"}`))
	require.NoError(t, err)

	c, err := schema.NewCodec(reg, schema.Protobuf[*testpb.Order]())
	require.NoError(t, err)
	var got *testpb.Order
	require.NoError(t, c.Unmarshal(v1, &got))
	assert.True(t, proto.Equal(&testpb.Order{Id: "o-1", Amount: 7, Note: "gift"}, got), "got %v", got)

	v2, err := c.MarshalTopic("orders", &testpb.Order{Id: "o-2", Amount: 1, Currency: "EUR"})
	require.NoError(t, err)
	d, err := reg.DecodeJSON(v2)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"o-2","amount":"1","note":"","currency":"EUR"}`, string(d.JSON))
	versions, err := reg.Client().SubjectVersions(t.Context(), "orders-value")
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, versions, "the .proto source, then the generated type's descriptor")

	_, err = old.EncodeJSON([]byte(`{"id":"o-3","amount":"many"}`))
	assert.ErrorContains(t, err, "does not match schema ID")
}
