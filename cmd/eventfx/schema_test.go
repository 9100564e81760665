package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/proctest"
	"github.com/eventfx/eventfx/schema"
)

const orderAvsc = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},
  {"name":"amount","type":"long"},
  {"name":"note","type":["null","string"],"default":null}]}`

const orderJSONSchema = `{"title":"shop.Order","type":"object",
  "properties":{"id":{"type":"string"},"amount":{"type":"integer"}},"required":["id","amount"]}`

// registryBroker runs `eventfx broker --schema-registry` on dataDir and
// returns it with the broker's address and the registry's URL.
func registryBroker(t *testing.T, addr, regAddr, dataDir string) *proctest.Proc {
	t.Helper()
	p := proctest.Start(t, proctest.Build(t, eventfxPkg), nil,
		"broker", "--addr", addr, "--data-dir", dataDir, "--schema-registry", regAddr)
	p.WaitOutput(`schema registry listening on `+regexp.QuoteMeta("http://"+regAddr), 20*time.Second)
	return p
}

func schemaFileAt(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// publish --value-schema encodes JSON lines, stops at the first that does
// not match; tail --decode prints them back, also after a broker restart
// on the same data dir (the schemas were kept).
func TestPublishValueSchemaThenTailDecode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr, regAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	b := registryBroker(t, addr, regAddr, dir)
	topic := kafkatest.Unique("orders")
	avsc := schemaFileAt(t, "order.avsc", orderAvsc)

	in := `{"id":"o-1","amount":42}
{"id":"o-2","amount":7,"note":"gift"}
{"id":"o-3","amount":"many"}
{"id":"o-4","amount":1}
`
	r := run(t, strings.NewReader(in), "publish", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--value-schema", avsc)
	require.NotEqual(t, 0, r.code, "a bad line fails the command\n%s", r)
	assert.Contains(t, r.stderr, "line 3:")
	assert.Contains(t, r.stderr, "amount")
	assert.Len(t, lines(r.stdout), 2, "the lines before the bad one were published\n%s", r)
	assert.Contains(t, r.stderr, "eventfx: encoding with schema ID 1 (subject "+topic+"-value)")

	recs := kafkatest.Read(t, addr, topic, 2, 10*time.Second)
	require.Len(t, recs, 2)
	for _, rec := range recs {
		id, _, err := schema.ParseFrame(rec.Value)
		require.NoError(t, err, "framed value")
		assert.Equal(t, 1, id)
		assert.Equal(t, schema.ContentTypeAvro, kafkatest.Headers(rec)[meta.ContentType])
	}
	assert.EqualValues(t, 2, kafkatest.Count(t, addr, topic), "nothing published for line 3 or after it")

	b.Stop(20 * time.Second)
	registryBroker(t, addr, regAddr, dir)

	r = ok(t, nil, "tail", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--from-beginning", "--limit", "2", "--decode", "--json")
	got := map[string]string{}
	for _, l := range lines(r.stdout) {
		var tr struct {
			SchemaID int             `json:"schema_id"`
			Value    json.RawMessage `json:"value"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &tr), l)
		assert.Equal(t, 1, tr.SchemaID)
		var v struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(tr.Value, &v), l)
		got[v.ID] = string(tr.Value)
	}
	require.Len(t, got, 2, "tail output:\n%s", r)
	assert.JSONEq(t, `{"id":"o-1","amount":42,"note":null}`, got["o-1"])
	assert.JSONEq(t, `{"id":"o-2","amount":7,"note":"gift"}`, got["o-2"])

	// Text lines: the schema ID, then the value as JSON.
	r = ok(t, nil, "tail", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--from-beginning", "--limit", "2", "--decode")
	for _, l := range lines(r.stdout) {
		assert.Regexp(t, `schema_id=1 \{"id":"o-[12]","amount":`, l)
	}
}

func TestPublishJSONSchemaAndTailDecodeOfUnframedValues(t *testing.T) {
	t.Parallel()
	addr, regAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	registryBroker(t, addr, regAddr, "")
	topic := kafkatest.Unique("json")
	file := schemaFileAt(t, "order.json", orderJSONSchema)

	ok(t, strings.NewReader(`{"id":"o-1","amount":3}`+"\n"), "publish", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--value-schema", file)
	r := run(t, strings.NewReader(`{"id":"o-2"}`+"\n"), "publish", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--value-schema", file)
	require.NotEqual(t, 0, r.code, "%s", r)
	assert.Contains(t, r.stderr, "line 1:")
	assert.Contains(t, r.stderr, "does not match its JSON schema")
	ok(t, nil, "publish", "--brokers", addr, "--topic", topic, "not framed")

	r = ok(t, nil, "tail", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--from-beginning", "--limit", "2", "--decode")
	out := strings.Join(lines(r.stdout), "\n")
	assert.Contains(t, out, `{"id":"o-1","amount":3}`)
	assert.Contains(t, out, `decode_error="not Schema Registry framing: first byte 0x6e, want the magic byte 0" not framed`)

}

func TestPublishProtobufThenTailDecode(t *testing.T) {
	t.Parallel()
	addr, regAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	registryBroker(t, addr, regAddr, "")
	topic := kafkatest.Unique("proto")
	file := schemaFileAt(t, "order.proto", `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 amount = 2;
  repeated string items = 3;
}
message Other { string x = 1; }
`)
	ok(t, strings.NewReader(`{"id":"o-1","amount":"12","items":["book","pen"]}`+"\n"), "publish", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--value-schema", file)
	r := run(t, strings.NewReader(`{"id":"o-2","amount":"12","colour":"red"}`+"\n"), "publish", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--value-schema", file)
	require.NotEqual(t, 0, r.code, "%s", r)
	assert.Contains(t, r.stderr, "line 1: does not match schema ID 1 (shop.Order)")
	assert.Contains(t, r.stderr, "colour")

	rec := kafkatest.Read(t, addr, topic, 1, 10*time.Second)[0]
	assert.Equal(t, schema.ContentTypeProtobuf, kafkatest.Headers(rec)[meta.ContentType])
	assert.Equal(t, []byte{0, 0, 0, 0, 1, 0}, rec.Value[:6], "schema ID 1, message index [0]")
	r = ok(t, nil, "tail", "--brokers", addr, "--schema-registry", regAddr, "--topic", topic, "--from-beginning", "--limit", "1", "--decode")
	assert.Contains(t, r.stdout, `schema_id=1 {"id":"o-1","amount":"12","items":["book","pen"]}`)
}
