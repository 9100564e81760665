package schema_test

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/registry"
	"github.com/eventfx/eventfx/schema"
)

const orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},
  {"name":"amount","type":"long"}]}`

// orderV2 adds a field with a default: BACKWARD compatible.
const orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},
  {"name":"amount","type":"long"},
  {"name":"currency","type":"string","default":"EUR"}]}`

type OrderV1 struct {
	ID     string `avro:"id" json:"id"`
	Amount int64  `avro:"amount" json:"amount"`
}

type OrderV2 struct {
	ID       string `avro:"id" json:"id"`
	Amount   int64  `avro:"amount" json:"amount"`
	Currency string `avro:"currency" json:"currency"`
}

const orderJSONSchema = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"shop.Order","type":"object",
  "properties":{"id":{"type":"string"},"amount":{"type":"integer","minimum":1}},"required":["id","amount"]}`

// newRegistry starts a registry of the test's own and a client of it.
func newRegistry(t testing.TB, edit func(*config.SchemaRegistry)) *schema.Registry {
	t.Helper()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	cfg := config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}}, SchemaRegistry: config.SchemaRegistry{URL: srv.URL()}}
	if edit != nil {
		edit(&cfg.SchemaRegistry)
	}
	reg, err := schema.New(cfg)
	require.NoError(t, err)
	t.Cleanup(reg.Close)
	return reg
}

func TestAvroRoundTripAndEvolution(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	v1, err := schema.NewCodec(reg, schema.Avro[OrderV1](orderV1))
	require.NoError(t, err)
	v2, err := schema.NewCodec(reg, schema.Avro[OrderV2](orderV2))
	require.NoError(t, err)

	old, err := v1.MarshalTopic("orders", OrderV1{ID: "o-1", Amount: 42})
	require.NoError(t, err)
	id, _, err := schema.ParseFrame(old)
	require.NoError(t, err)

	// A v2 reader reads v1 data: the added field gets its default.
	var got OrderV2
	require.NoError(t, v2.Unmarshal(old, &got))
	assert.Equal(t, OrderV2{ID: "o-1", Amount: 42, Currency: "EUR"}, got)

	// v2 registers as version 2 of orders-value, with a new ID.
	newer, err := v2.MarshalTopic("orders", OrderV2{ID: "o-2", Amount: 7, Currency: "USD"})
	require.NoError(t, err)
	id2, _, err := schema.ParseFrame(newer)
	require.NoError(t, err)
	assert.NotEqual(t, id, id2)
	versions, err := reg.Client().SubjectVersions(t.Context(), "orders-value")
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, versions)

	// And a v1 reader reads v2 data, skipping the field it does not know.
	var back OrderV1
	require.NoError(t, v1.Unmarshal(newer, &back))
	assert.Equal(t, OrderV1{ID: "o-2", Amount: 7}, back)

	d, err := reg.DecodeJSON(newer)
	require.NoError(t, err)
	assert.Equal(t, id2, d.ID)
	assert.JSONEq(t, `{"id":"o-2","amount":7,"currency":"USD"}`, string(d.JSON))
}

func TestRegistryRefusesAnIncompatibleAvroSchema(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	v1, err := schema.NewCodec(reg, schema.Avro[OrderV1](orderV1))
	require.NoError(t, err)
	_, err = v1.MarshalTopic("orders", OrderV1{ID: "o-1", Amount: 1})
	require.NoError(t, err)

	// A required field without a default: v1 data cannot be read with it.
	const breaking = `{"type":"record","name":"Order","namespace":"shop","fields":[
	  {"name":"id","type":"string"},{"name":"amount","type":"long"},{"name":"currency","type":"string"}]}`
	bad, err := schema.NewCodec(reg, schema.Avro[OrderV2](breaking))
	require.NoError(t, err)
	_, err = bad.MarshalTopic("orders", OrderV2{ID: "o-2", Amount: 1, Currency: "EUR"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "incompatible")
	assert.Contains(t, err.Error(), "currency")
	assert.False(t, errors.Is(err, handlers.ErrCodecUnavailable), "an incompatible schema is permanent: %v", err)
}

func TestJSONSchemaRoundTripAndValidation(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	c, err := schema.NewCodec(reg, schema.JSONSchema[OrderV1](orderJSONSchema))
	require.NoError(t, err)
	b, err := c.MarshalTopic("orders-json", OrderV1{ID: "o-1", Amount: 5})
	require.NoError(t, err)
	var got OrderV1
	require.NoError(t, c.Unmarshal(b, &got))
	assert.Equal(t, OrderV1{ID: "o-1", Amount: 5}, got)

	_, err = c.MarshalTopic("orders-json", OrderV1{ID: "o-2", Amount: 0})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not match its JSON schema")
}

func TestSubjectStrategies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		strategy string
		want     string
	}{
		{config.SubjectTopic, "orders-value"},
		{config.SubjectRecord, "shop.Order"},
		{config.SubjectTopicRecord, "orders-shop.Order"},
	}
	for _, tt := range tests {
		t.Run(tt.strategy, func(t *testing.T) {
			t.Parallel()
			reg := newRegistry(t, func(s *config.SchemaRegistry) { s.SubjectStrategy = tt.strategy })
			c, err := schema.NewCodec(reg, schema.Avro[OrderV1](orderV1))
			require.NoError(t, err)
			_, err = c.MarshalTopic("orders", OrderV1{ID: "o", Amount: 1})
			require.NoError(t, err)
			subjects, err := reg.Client().Subjects(t.Context())
			require.NoError(t, err)
			assert.Equal(t, []string{tt.want}, subjects)
		})
	}
}

func TestUseLatestEncodesWithTheRegisteredSchema(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	writer, err := schema.NewCodec(reg, schema.Avro[OrderV2](orderV2))
	require.NoError(t, err)
	first, err := writer.MarshalTopic("orders", OrderV2{ID: "o", Amount: 1, Currency: "EUR"})
	require.NoError(t, err)
	wantID, _, _ := schema.ParseFrame(first)

	latest, err := schema.New(config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}},
		SchemaRegistry: config.SchemaRegistry{URL: reg.URL(), UseLatest: true}})
	require.NoError(t, err)
	c, err := schema.NewCodec(latest, schema.Avro[OrderV2](orderV2))
	require.NoError(t, err)
	b, err := c.MarshalTopic("orders", OrderV2{ID: "p", Amount: 2, Currency: "USD"})
	require.NoError(t, err)
	id, _, _ := schema.ParseFrame(b)
	assert.Equal(t, wantID, id)
	versions, err := reg.Client().SubjectVersions(t.Context(), "orders-value")
	require.NoError(t, err)
	assert.Equal(t, []int{1}, versions, "use_latest registers nothing")
}

func TestBadValuesArePermanentAndSayWhy(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, nil)
	c, err := schema.NewCodec(reg, schema.Avro[OrderV1](orderV1))
	require.NoError(t, err)
	good, err := c.MarshalTopic("orders", OrderV1{ID: "o-1", Amount: 42})
	require.NoError(t, err)
	id, _, _ := schema.ParseFrame(good)

	tests := []struct {
		name    string
		payload []byte
		reason  string
	}{
		{"plain JSON", []byte(`{"id":"o-1"}`), "first byte 0x7b, want the magic byte 0"},
		{"shorter than the framing", []byte{0, 0, 1}, "3 bytes, want at least 5"},
		{"unknown schema ID", append([]byte{0, 0, 0, 0x30, 0x39}, good[5:]...), "schema ID 12345 is unknown to the registry"},
		{"truncated value", good[:len(good)-2], "schema ID " + itoa(id) + " (subject orders-value)"},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2), "2 bytes after the value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o OrderV1
			err := c.Unmarshal(tt.payload, &o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.reason)
			assert.False(t, errors.Is(err, handlers.ErrCodecUnavailable), "permanent: %v", err)
			_, err = reg.DecodeJSON(tt.payload)
			assert.ErrorContains(t, err, tt.reason)
		})
	}
}

func TestUnreachableRegistryIsTransient(t *testing.T) {
	t.Parallel()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	reg, err := schema.New(config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}}, SchemaRegistry: config.SchemaRegistry{URL: srv.URL()}})
	require.NoError(t, err)
	c, err := schema.NewCodec(reg, schema.Avro[OrderV1](orderV1))
	require.NoError(t, err)
	good, err := c.MarshalTopic("orders", OrderV1{ID: "o-1", Amount: 42})
	require.NoError(t, err)
	srv.Close()

	fresh, err := schema.New(config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}}, SchemaRegistry: config.SchemaRegistry{URL: srv.URL()}})
	require.NoError(t, err)
	c2, err := schema.NewCodec(fresh, schema.Avro[OrderV1](orderV1))
	require.NoError(t, err)
	var o OrderV1
	err = c2.Unmarshal(good, &o)
	require.Error(t, err)
	assert.True(t, errors.Is(err, handlers.ErrCodecUnavailable), "transient: %v", err)
	assert.ErrorIs(t, fresh.Ping(t.Context()), handlers.ErrCodecUnavailable)

	// The first client decodes from its cache: the registry is not needed again.
	require.NoError(t, c.Unmarshal(good, &o))
	assert.Equal(t, OrderV1{ID: "o-1", Amount: 42}, o)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// An https registry is verified against schema_registry.tls.ca_file.
func TestHTTPSRegistryWithItsCA(t *testing.T) {
	t.Parallel()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(srv) // the same registry, behind TLS
	t.Cleanup(tlsSrv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600))

	client := func(s config.SchemaRegistry) *schema.Registry {
		cfg := config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}}, SchemaRegistry: s}
		require.NoError(t, cfg.WithDefaults().Validate())
		reg, err := schema.New(cfg)
		require.NoError(t, err)
		t.Cleanup(reg.Close)
		return reg
	}
	trusted := client(config.SchemaRegistry{URL: tlsSrv.URL, TLS: config.SchemaRegistryTLS{CAFile: ca}})
	c, err := schema.NewCodec(trusted, schema.Avro[OrderV1](orderV1))
	require.NoError(t, err)
	b, err := c.MarshalTopic("orders", OrderV1{ID: "o", Amount: 1})
	require.NoError(t, err)
	var o OrderV1
	require.NoError(t, c.Unmarshal(b, &o))

	err = client(config.SchemaRegistry{URL: tlsSrv.URL}).Ping(t.Context())
	assert.ErrorContains(t, err, "certificate", "without the CA the registry is not trusted")
}

// The client authenticates as configured: basic auth or a bearer token.
func TestRegistryAuthentication(t *testing.T) {
	t.Parallel()
	srv, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	tests := []struct {
		name  string
		want  string // the Authorization header the registry requires
		given config.SchemaRegistry
	}{
		{"basic auth", "Basic YWxpY2U6czNjcmV0", config.SchemaRegistry{Username: "alice", Password: "s3cret"}},
		{"bearer token", "Bearer tok-1", config.SchemaRegistry{BearerToken: "tok-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			guarded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != tt.want {
					http.Error(w, `{"error_code":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
					return
				}
				srv.ServeHTTP(w, r)
			}))
			t.Cleanup(guarded.Close)
			newClient := func(s config.SchemaRegistry) *schema.Registry {
				s.URL = guarded.URL
				reg, err := schema.New(config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}}, SchemaRegistry: s})
				require.NoError(t, err)
				t.Cleanup(reg.Close)
				return reg
			}
			c, err := schema.NewCodec(newClient(tt.given), schema.Avro[OrderV1](orderV1))
			require.NoError(t, err)
			_, err = c.MarshalTopic("orders-"+strings.ReplaceAll(tt.name, " ", "-"), OrderV1{ID: "o", Amount: 1})
			require.NoError(t, err)

			anonymous, err := schema.NewCodec(newClient(config.SchemaRegistry{}), schema.Avro[OrderV1](orderV1))
			require.NoError(t, err)
			_, err = anonymous.MarshalTopic("orders", OrderV1{ID: "o", Amount: 1})
			assert.ErrorContains(t, err, "the registry at "+guarded.URL+" answered 401: Unauthorized")
		})
	}
}
