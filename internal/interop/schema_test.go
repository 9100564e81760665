package interop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/fx"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/eventfxtest"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/registry"
	"github.com/eventfx/eventfx/internal/testpb"
	"github.com/eventfx/eventfx/schema"
)

// Confluent's own serializers (python3-confluent-kafka with python3-avro and
// python3-jsonschema) against eventfx's embedded broker and registry, both
// ways: what they write, eventfx reads; what eventfx writes, they read.

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},
  {"name":"amount","type":"long"},
  {"name":"note","type":["null","string"],"default":null}]}`
	// orderV2 adds a field with a default (BACKWARD compatible).
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},
  {"name":"amount","type":"long"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"currency","type":"string","default":"EUR"}]}`
	orderJSON = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"shop.Order","type":"object",
  "properties":{"id":{"type":"string"},"amount":{"type":"integer"}},"required":["id","amount"]}`
)

type orderV2Go struct {
	ID       string  `avro:"id" json:"id"`
	Amount   int64   `avro:"amount" json:"amount"`
	Note     *string `avro:"note" json:"note"`
	Currency string  `avro:"currency" json:"currency"`
}

type orderJSONGo struct {
	ID     string `json:"id"`
	Amount int64  `json:"amount"`
}

// confluent skips the test unless Confluent's Python serializers are
// installed, and returns the interpreter.
func confluent(t *testing.T, modules ...string) string {
	t.Helper()
	python := need(t, "/usr/bin/python3", "python3")
	for _, m := range modules {
		if err := exec.Command(python, "-c", "import "+m).Run(); err != nil {
			t.Skipf("python module %s is missing (Debian packages python3-confluent-kafka python3-avro python3-jsonschema; CI installs them)", m)
		}
	}
	return python
}

// registryBroker starts an embedded broker serving a schema registry.
func registryBroker(t *testing.T) (addr, url string, reg *schema.Registry) {
	t.Helper()
	b, err := broker.Start(broker.Config{SchemaRegistry: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	reg, err = schema.New(config.Config{Kafka: config.Kafka{Brokers: []string{b.Addr()}}, SchemaRegistry: config.SchemaRegistry{URL: b.RegistryURL()}})
	require.NoError(t, err)
	t.Cleanup(reg.Close)
	return b.Addr(), b.RegistryURL(), reg
}

// python runs script with args and returns its stdout lines.
func python(t *testing.T, bin, script string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "python: %s", stderr.String())
	return strings.Fields(strings.TrimSpace(string(out)))
}

// Python's consumers read until they have n values or 60 s passed, and
// print each value as one line of JSON.
const pyConsume = `
import json, sys, time
def consume(c, topic, n):
    c.subscribe([topic])
    got, deadline = [], time.time() + 60
    while len(got) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise Exception(str(m.error()))
        got.append(m.value())
    c.close()
    if len(got) < n:
        raise Exception("read %d of %d values" % (len(got), n))
    for v in got:
        print(json.dumps(v, separators=(",", ":"), sort_keys=True))
`

func TestConfluentAvroWritesEventfxReads(t *testing.T) {
	t.Parallel()
	py := confluent(t, "confluent_kafka.avro")
	addr, url, reg := registryBroker(t)
	topic := kafkatest.Unique("avro-in")
	script := `
import sys
from confluent_kafka import avro
from confluent_kafka.avro import AvroProducer
p = AvroProducer({"bootstrap.servers": sys.argv[1], "schema.registry.url": sys.argv[2]},
                 default_value_schema=avro.loads(sys.argv[4]))
for i in range(5):
    p.produce(topic=sys.argv[3], value={"id": "o-%d" % i, "amount": i * 100, "note": None if i % 2 else "gift"})
p.flush()
`
	python(t, py, script, addr, url, topic, orderV1)

	codec, err := schema.NewCodec(reg, schema.Avro[orderV2Go](orderV2))
	require.NoError(t, err)
	got := map[string]orderV2Go{}
	for _, r := range kafkatest.Read(t, addr, topic, 5, 30*time.Second) {
		// Read with the newer schema: the field Confluent's producer did not
		// know gets its default.
		var o orderV2Go
		require.NoError(t, codec.Unmarshal(r.Value, &o))
		got[o.ID] = o
		d, err := reg.DecodeJSON(r.Value)
		require.NoError(t, err)
		assert.Contains(t, string(d.JSON), `"id":"`+o.ID+`"`)
	}
	require.Len(t, got, 5)
	gift := "gift"
	assert.Equal(t, orderV2Go{ID: "o-0", Amount: 0, Note: &gift, Currency: "EUR"}, got["o-0"])
	assert.Equal(t, orderV2Go{ID: "o-3", Amount: 300, Currency: "EUR"}, got["o-3"])
	subjects, err := reg.Client().Subjects(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{topic + "-value"}, subjects, "Confluent's producer registered under the topic's subject")
}

func TestEventfxAvroWritesConfluentReads(t *testing.T) {
	t.Parallel()
	py := confluent(t, "confluent_kafka.avro")
	addr, url, reg := registryBroker(t)
	topic := kafkatest.Unique("avro-out")
	codec, err := schema.NewCodec(reg, schema.Avro[orderV2Go](orderV2))
	require.NoError(t, err)
	note := "fragile"
	var recs []*kgo.Record
	for _, o := range []orderV2Go{{ID: "o-1", Amount: 10, Currency: "USD"}, {ID: "o-2", Amount: 20, Note: &note, Currency: "EUR"}} {
		v, err := codec.MarshalTopic(topic, o)
		require.NoError(t, err)
		// No key: AvroConsumer decodes keys as Avro too.
		recs = append(recs, &kgo.Record{Topic: topic, Value: v})
	}
	kafkatest.Produce(t, addr, recs...)

	script := pyConsume + `
from confluent_kafka.avro import AvroConsumer
consume(AvroConsumer({"bootstrap.servers": sys.argv[1], "schema.registry.url": sys.argv[2],
                      "group.id": sys.argv[3] + "-py", "auto.offset.reset": "earliest"}), sys.argv[3], 2)
`
	got := python(t, py, script, addr, url, topic)
	assert.ElementsMatch(t, []string{
		`{"amount":10,"currency":"USD","id":"o-1","note":null}`,
		`{"amount":20,"currency":"EUR","id":"o-2","note":"fragile"}`,
	}, got)
}

func TestConfluentJSONSchemaBothWays(t *testing.T) {
	t.Parallel()
	py := confluent(t, "confluent_kafka.schema_registry.json_schema", "jsonschema")
	addr, url, reg := registryBroker(t)
	in, out := kafkatest.Unique("json-in"), kafkatest.Unique("json-out")
	codec, err := schema.NewCodec(reg, schema.JSONSchema[orderJSONGo](orderJSON))
	require.NoError(t, err)

	write := `
import sys
from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
p = SerializingProducer({"bootstrap.servers": sys.argv[1],
    "value.serializer": JSONSerializer(sys.argv[4], SchemaRegistryClient({"url": sys.argv[2]}))})
for i in range(3):
    p.produce(sys.argv[3], value={"id": "j-%d" % i, "amount": i + 1})
p.flush()
`
	python(t, py, write, addr, url, in, orderJSON)
	got := map[string]int64{}
	for _, r := range kafkatest.Read(t, addr, in, 3, 30*time.Second) {
		var o orderJSONGo
		require.NoError(t, codec.Unmarshal(r.Value, &o))
		got[o.ID] = o.Amount
	}
	assert.Equal(t, map[string]int64{"j-0": 1, "j-1": 2, "j-2": 3}, got)

	var recs []*kgo.Record
	for _, o := range []orderJSONGo{{ID: "k-1", Amount: 5}, {ID: "k-2", Amount: 6}} {
		v, err := codec.MarshalTopic(out, o)
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Topic: out, Value: v})
	}
	kafkatest.Produce(t, addr, recs...)
	read := pyConsume + `
from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
consume(DeserializingConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[3] + "-py",
    "auto.offset.reset": "earliest", "value.deserializer": JSONDeserializer(sys.argv[4])}), sys.argv[3], 2)
`
	lines := python(t, py, read, addr, url, out, orderJSON)
	assert.ElementsMatch(t, []string{`{"amount":5,"id":"k-1"}`, `{"amount":6,"id":"k-2"}`}, lines)
	for _, l := range lines {
		assert.True(t, json.Valid([]byte(l)), l)
	}
}

// Protobuf: Confluent's ProtobufSerializer and ProtobufDeserializer, with a
// message class built from the descriptor of the generated testpb.Order.
// (Only the first message of a file: python3-confluent-kafka 1.7.0 writes
// message indexes as unsigned varints, where Confluent's Java serializer
// and eventfx write zigzag varints; for the index [0] both are the byte 0.)
func TestConfluentProtobufBothWays(t *testing.T) {
	t.Parallel()
	py := confluent(t, "confluent_kafka.schema_registry.protobuf", "google.protobuf")
	addr, url, reg := registryBroker(t)
	in, out := kafkatest.Unique("proto-in"), kafkatest.Unique("proto-out")
	codec, err := schema.NewCodec(reg, schema.Protobuf[*testpb.Order]())
	require.NoError(t, err)
	fd, err := proto.Marshal(protodesc.ToFileDescriptorProto((&testpb.Order{}).ProtoReflect().Descriptor().ParentFile()))
	require.NoError(t, err)
	descriptor := base64.StdEncoding.EncodeToString(fd)

	const pyOrder = `
import base64, sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(sys.argv[4]))
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
Order = message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("eventfx.testpb.Order"))
`
	write := pyOrder + `
from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
p = SerializingProducer({"bootstrap.servers": sys.argv[1],
    "value.serializer": ProtobufSerializer(Order, SchemaRegistryClient({"url": sys.argv[2]}))})
for i in range(3):
    p.produce(sys.argv[3], value=Order(id="p-%d" % i, amount=i + 10, currency="CHF"))
p.flush()
`
	python(t, py, write, addr, url, in, descriptor)
	got := map[string]int64{}
	for _, r := range kafkatest.Read(t, addr, in, 3, 30*time.Second) {
		var o *testpb.Order
		require.NoError(t, codec.Unmarshal(r.Value, &o))
		assert.Equal(t, "CHF", o.Currency)
		got[o.Id] = o.Amount
		d, err := reg.DecodeJSON(r.Value)
		require.NoError(t, err)
		assert.Contains(t, string(d.JSON), `"id":"`+o.Id+`"`)
	}
	assert.Equal(t, map[string]int64{"p-0": 10, "p-1": 11, "p-2": 12}, got)

	var recs []*kgo.Record
	for _, o := range []*testpb.Order{{Id: "q-1", Amount: 5, Note: "n"}, {Id: "q-2", Amount: 6}} {
		v, err := codec.MarshalTopic(out, o)
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Topic: out, Value: v})
	}
	kafkatest.Produce(t, addr, recs...)
	read := pyOrder + pyConsume + `
from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from google.protobuf.json_format import MessageToDict
class AsDict:
    def __init__(self): self.d = ProtobufDeserializer(Order)
    def __call__(self, value, ctx): return MessageToDict(self.d(value, ctx), preserving_proto_field_name=True)
consume(DeserializingConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[3] + "-py",
    "auto.offset.reset": "earliest", "value.deserializer": AsDict()}), sys.argv[3], 2)
`
	lines := python(t, py, read, addr, url, out, descriptor)
	assert.ElementsMatch(t, []string{`{"amount":"5","id":"q-1","note":"n"}`, `{"amount":"6","id":"q-2"}`}, lines)
}

// What Confluent's AvroProducer writes reaches an eventfx typed handler on
// the broker; a value of another record (registered under the topic's
// subject with compatibility NONE) cannot be read with the handler's
// schema: it is poisoned at once, its reason naming the schema ID and the
// subject, and the other values are handled.
func TestConfluentAvroToATypedHandler(t *testing.T) {
	t.Parallel()
	py := confluent(t, "confluent_kafka.avro")
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	topic := kafkatest.Unique("avro-handled")
	handled := make(chan orderV2Go, 10)
	env := eventfxtest.New(t,
		eventfxtest.Config(func(c *config.Config) { c.SchemaRegistry.URL = srv.URL() }),
		eventfxtest.Modules(app.SchemaModule, fx.Provide(handlers.AsHandler(func(reg *schema.Registry) (handlers.Handler, error) {
			codec, err := schema.NewCodec(reg, schema.Avro[orderV2Go](orderV2))
			return handlers.New("billing", topic, func(_ context.Context, o orderV2Go) error {
				handled <- o
				return nil
			}, handlers.WithCodec(codec)), err
		}))))
	cl, err := sr.NewClient(sr.URLs(srv.URL()))
	require.NoError(t, err)
	require.NoError(t, cl.SetCompatibility(t.Context(), sr.SetCompatibility{Level: sr.CompatNone}, topic+"-value")[0].Err)

	script := `
import sys
from confluent_kafka import avro
from confluent_kafka.avro import AvroProducer
conf = {"bootstrap.servers": sys.argv[1], "schema.registry.url": sys.argv[2]}
orders = AvroProducer(conf, default_value_schema=avro.loads(sys.argv[4]))
for i in range(3):
    orders.produce(topic=sys.argv[3], value={"id": "o-%d" % i, "amount": i, "note": None})
orders.flush()
refunds = AvroProducer(conf, default_value_schema=avro.loads('{"type":"record","name":"Refund","fields":[{"name":"refund_id","type":"string"}]}'))
refunds.produce(topic=sys.argv[3], value={"refund_id": "r-1"})
refunds.flush()
`
	python(t, py, script, env.Broker(), srv.URL(), topic, orderV1)

	p := env.Poisoned(1)[0]
	assert.Equal(t, 1, p.Attempts)
	assert.Contains(t, p.Reason, "schema ID 2 (subject "+topic+"-value)")
	assert.Contains(t, p.Reason, "cannot read it")
	got := map[string]bool{}
	for range 3 {
		select {
		case o := <-handled:
			got[o.ID] = true
			assert.Equal(t, "EUR", o.Currency, "the reader's default")
		case <-time.After(30 * time.Second):
			t.Fatalf("handled %v of the 3 orders", got)
		}
	}
}
