package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/console"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/registry"
	"github.com/eventfx/eventfx/schema"
)

const orderAvsc = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"amount","type":"long"}]}`

// With a registry, a framed payload is shown as its JSON with its schema
// ID, and one that names an unknown schema as it is, with the reason.
func TestMessagesDecodedThroughTheSchemaRegistry(t *testing.T) {
	addr := kafkatest.Broker(t)
	sr, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	defer sr.Close()
	cfg := kafkatest.Config(addr)
	cfg.SchemaRegistry.URL = sr.URL()
	reg, err := schema.New(cfg)
	require.NoError(t, err)
	defer reg.Close()

	topic := kafkatest.Unique("avro")
	enc, err := reg.NewEncoder(t.Context(), topic, schema.FormatAvro, orderAvsc)
	require.NoError(t, err)
	value, err := enc.EncodeJSON([]byte(`{"id":"order-1","amount":42}`))
	require.NoError(t, err)
	unknown := append([]byte{0, 0, 0, 0x7f, 0x7f}, value[5:]...) // schema ID 32639
	kafkatest.Produce(t, addr,
		&kgo.Record{Topic: topic, Key: []byte("k"), Value: value}, // one key: one partition, offsets 0, 1, 2
		&kgo.Record{Topic: topic, Key: []byte("k"), Value: unknown},
		&kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(`{"plain":true}`)})

	client, err := poison.Dial(t.Context(), []string{addr}, cfg.Kafka)
	require.NoError(t, err)
	defer client.Close()
	c, err := console.New(console.Options{Client: client, Decode: func(p []byte) (int, []byte, error) {
		d, err := reg.DecodeJSON(p)
		return d.ID, d.JSON, err
	}})
	require.NoError(t, err)
	defer c.Close()
	s := &system{base: serve(t, c)}

	var ms console.Messages
	require.Equal(t, http.StatusOK, s.get(t, "/api/topics/"+topic+"/messages?limit=3", &ms))
	require.Len(t, ms.Messages, 3, jsonString(ms))
	byOffset := map[int64]console.Message{}
	for _, m := range ms.Messages {
		byOffset[m.Offset] = m
	}

	decoded := byOffset[0]
	assert.Equal(t, enc.ID(), decoded.SchemaID)
	assert.True(t, decoded.JSON)
	assert.Empty(t, decoded.DecodeError)
	var order map[string]any
	require.NoError(t, json.Unmarshal([]byte(decoded.Payload), &order), decoded.Payload)
	assert.Equal(t, map[string]any{"id": "order-1", "amount": float64(42)}, order)

	bad := byOffset[1]
	assert.Zero(t, bad.SchemaID)
	assert.Contains(t, bad.DecodeError, "32639")
	assert.False(t, bad.JSON)
	assert.NotEmpty(t, bad.Payload+bad.PayloadBase64, "an undecodable value is shown as it is")

	plain := byOffset[2]
	assert.Zero(t, plain.SchemaID)
	assert.Empty(t, plain.DecodeError, "an unframed value is not a decoding failure")
	assert.True(t, plain.JSON)

	code, page := getPage(t, s.base+"/messages?topic="+topic)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "schema ID")
	assert.Contains(t, page, "not decoded")
}

// getPage returns the status and body of a page.
func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}
