package webhook_test

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/registry"
	"github.com/eventfx/eventfx/internal/testpb"
	"github.com/eventfx/eventfx/internal/webhook"
	"github.com/eventfx/eventfx/schema"
)

const orderAvsc = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"amount","type":"long"}]}`

type order struct {
	ID     string `avro:"id"`
	Amount int64  `avro:"amount"`
}

func registryClient(t *testing.T, url string) *schema.Registry {
	t.Helper()
	reg, err := schema.New(config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}}, SchemaRegistry: config.SchemaRegistry{URL: url}})
	require.NoError(t, err)
	t.Cleanup(reg.Close)
	return reg
}

// A route with decode: json delivers Avro values as JSON, signed as
// delivered, with the schema ID; bad values are permanent, an absent
// registry transient.
func TestDecodeJSONRoute(t *testing.T) {
	t.Parallel()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	reg := registryClient(t, srv.URL())
	codec, err := schema.NewCodec(reg, schema.Avro[order](orderAvsc))
	require.NoError(t, err)
	framed, err := codec.MarshalTopic("orders", order{ID: "o-1", Amount: 42})
	require.NoError(t, err)
	id, _, err := schema.ParseFrame(framed)
	require.NoError(t, err)

	hook := newHook(t, answer(http.StatusOK, ""))
	r := route(hook.URL, "s3cret")
	r.Decode = config.DecodeJSON
	h, err := webhook.New(r, webhook.NewClient(), webhook.WithRegistry(reg))
	require.NoError(t, err)

	require.NoError(t, deliver(h, event("e-1", string(framed)), 1))
	reqs := hook.requests()
	require.Len(t, reqs, 1)
	got := reqs[0]
	assert.JSONEq(t, `{"id":"o-1","amount":42}`, string(got.Body))
	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	assert.Equal(t, strconv.Itoa(id), got.Header.Get(webhook.HeaderSchemaID))
	assert.Equal(t, "sha256="+hex.EncodeToString(hmacSHA256([]byte("s3cret"), got.Body)), got.Header.Get(webhook.HeaderSignature))
	verifyStandardWebhook(t, []byte("s3cret"), got.Header, got.Body)

	bad := []struct {
		name, payload, reason string
	}{
		{"not framed", `{"id":"o-1"}`, "decode: not Schema Registry framing: first byte 0x7b"},
		{"unknown schema ID", string([]byte{0, 0, 0, 0x30, 0x39, 2, 'x', 2}), "decode: schema ID 12345 is unknown to the registry"},
		{"truncated", string(framed[:len(framed)-1]), "decode: schema ID " + strconv.Itoa(id) + " (subject orders-value)"},
	}
	for _, b := range bad {
		err := deliver(h, event("e-"+b.name, b.payload), 1)
		assert.Equal(t, "permanent", outcome(err), b.name)
		assert.ErrorContains(t, err, b.reason, b.name)
	}
	assert.Len(t, hook.requests(), 1, "nothing undecodable was delivered")

	// A registry that does not answer, for a schema not cached yet.
	down, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	down.Close()
	h, err = webhook.New(r, webhook.NewClient(), webhook.WithRegistry(registryClient(t, down.URL())))
	require.NoError(t, err)
	assert.Equal(t, "transient", outcome(deliver(h, event("e-down", string(framed)), 1)))

	_, err = webhook.New(r, webhook.NewClient())
	assert.ErrorContains(t, err, "decode: json needs a schema registry")
}

func TestDecodeJSONRouteDeliversProtobufAsJSON(t *testing.T) {
	t.Parallel()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	reg := registryClient(t, srv.URL())
	codec, err := schema.NewCodec(reg, schema.Protobuf[*testpb.Order](), schema.Protobuf[*testpb.Payment]())
	require.NoError(t, err)
	framed, err := codec.MarshalTopic("payments", &testpb.Payment{OrderId: "o-1", Amount: 42})
	require.NoError(t, err)

	hook := newHook(t, answer(http.StatusOK, ""))
	r := route(hook.URL, "")
	r.Decode = config.DecodeJSON
	h, err := webhook.New(r, webhook.NewClient(), webhook.WithRegistry(reg))
	require.NoError(t, err)
	require.NoError(t, deliver(h, event("e-1", string(framed)), 1))
	reqs := hook.requests()
	require.Len(t, reqs, 1)
	assert.JSONEq(t, `{"order_id":"o-1","amount":"42"}`, string(reqs[0].Body))
	assert.Equal(t, "application/json", reqs[0].Header.Get("Content-Type"))
}
