package main_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
	"github.com/eventfx/eventfx/schema"
)

type order struct {
	ID     string `avro:"id"`
	Amount int64  `avro:"amount"`
}

// A route with decode: json, against `eventfx broker --schema-registry`:
// Avro values reach the webhook as JSON with their schema ID; a value that
// is not framed is poisoned at once with its reason.
func TestDecodeJSONRouteDeliversAvroAsJSON(t *testing.T) {
	t.Parallel()
	addr, regAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	b := proctest.Start(t, proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx"), nil,
		"broker", "--addr", addr, "--data-dir", "", "--schema-registry", regAddr)
	b.WaitOutput(`schema registry listening on `+regexp.QuoteMeta("http://"+regAddr), waitFor)
	hooks := newWebhooks(t, map[string]func(int, http.ResponseWriter, *http.Request){"orders": status(http.StatusOK, "")})

	reg, err := schema.New(config.Config{Kafka: config.Kafka{Brokers: []string{addr}}, SchemaRegistry: config.SchemaRegistry{URL: "http://" + regAddr}})
	require.NoError(t, err)
	defer reg.Close()
	codec, err := schema.NewCodec(reg, schema.Avro[order](`{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"amount","type":"long"}]}`))
	require.NoError(t, err)
	topic, poison := kafkatest.Unique("orders"), kafkatest.Unique("poison")
	value, err := codec.MarshalTopic(topic, order{ID: "o-1", Amount: 42})
	require.NoError(t, err)
	id, _, err := schema.ParseFrame(value)
	require.NoError(t, err)
	kafkatest.Produce(t, addr, record(topic, "evt-avro", "corr-1", string(value)), record(topic, "evt-json", "corr-2", `{"id":"o-2"}`))

	httpAddr, service := proctest.FreeAddr(t), kafkatest.Unique("relay")
	cfg := proctest.WriteConfig(t, fmt.Sprintf(`
service: %s
kafka:
  brokers: [%s]
  session_timeout: 2s
  heartbeat_interval: 200ms
  commit_interval: 100ms
poison:
  topic: %s
http:
  addr: %s
schema_registry:
  url: http://%s
subscriber:
  routes:
    - {name: orders, topic: %s, decode: json, webhook: {url: %s/orders}}
`, service, addr, poison, httpAddr, regAddr, topic, hooks.URL))
	p := proctest.Start(t, proctest.Build(t, pkg), nil, "--config", cfg)
	waitReady(t, p, httpAddr)

	h := poisoned(t, addr, poison, 1, "orders")
	assert.Equal(t, "decode: not Schema Registry framing: first byte 0x7b, want the magic byte 0", h["reason_poisoned"])
	assert.Equal(t, "1", h["eventfx_attempts"])
	assert.Equal(t, "evt-json", h["_watermill_message_uuid"])

	waitCommitted(t, addr, service+".orders", topic, 2)
	got := hooks.deliveries("orders")
	require.Len(t, got, 1, "only the decodable value is delivered")
	assert.JSONEq(t, `{"id":"o-1","amount":42}`, string(got[0].Body))
	assert.Equal(t, "application/json", got[0].Header.Get("Content-Type"))
	assert.Equal(t, strconv.Itoa(id), got[0].Header.Get("X-Schema-ID"))
	assert.Equal(t, "evt-avro", got[0].Header.Get("X-Event-ID"))
}
