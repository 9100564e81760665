package registry_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/registry"
)

const (
	v1 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`
	v2 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":"string","default":""}]}`
	// v3 adds a field without a default: old data cannot be read with it.
	v3 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"note","type":"string","default":""},{"name":"qty","type":"int"}]}`
)

func client(t *testing.T, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	require.NoError(t, err)
	return cl
}

// A broker restarted on its data dir serves the schemas registered before,
// under the same IDs and versions, beside the records it kept.
func TestSchemasSurviveABrokerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := broker.Start(broker.Config{DataDir: dir, SchemaRegistry: "127.0.0.1:0"})
	require.NoError(t, err)
	cl := client(t, b.RegistryURL())
	first, err := cl.CreateSchema(t.Context(), "orders-value", sr.Schema{Schema: v1})
	require.NoError(t, err)
	second, err := cl.CreateSchema(t.Context(), "orders-value", sr.Schema{Schema: v2})
	require.NoError(t, err)
	other, err := cl.CreateSchema(t.Context(), "payments-value", sr.Schema{Schema: `{"type":"string"}`})
	require.NoError(t, err)
	require.NoError(t, cl.SetCompatibility(t.Context(), sr.SetCompatibility{Level: sr.CompatNone}, "payments-value")[0].Err)
	gone, err := cl.CreateSchema(t.Context(), "gone-value", sr.Schema{Schema: `{"type":"int"}`})
	require.NoError(t, err)
	_, err = cl.DeleteSubject(t.Context(), "gone-value", sr.SoftDelete)
	require.NoError(t, err)
	kc, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	require.NoError(t, err)
	require.NoError(t, kc.ProduceSync(t.Context(), &kgo.Record{Topic: "orders", Value: []byte("kept")}).FirstErr())
	kc.Close()
	b.Close()

	b, err = broker.Start(broker.Config{DataDir: dir, SchemaRegistry: "127.0.0.1:0"})
	require.NoError(t, err)
	defer b.Close()
	cl = client(t, b.RegistryURL())
	for _, want := range []sr.SubjectSchema{first, second, other} {
		got, err := cl.SchemaByVersion(t.Context(), want.Subject, want.Version)
		require.NoError(t, err, "%s version %d after the restart", want.Subject, want.Version)
		assert.Equal(t, want.ID, got.ID, "%s version %d", want.Subject, want.Version)
		assert.JSONEq(t, want.Schema.Schema, got.Schema.Schema)
	}
	subjects, err := cl.Subjects(t.Context())
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"orders-value", "payments-value"}, subjects, "the deleted subject stays deleted")
	levels := cl.Compatibility(t.Context(), "payments-value")
	require.NoError(t, levels[0].Err)
	assert.Equal(t, sr.CompatNone, levels[0].Level)
	// A new schema gets a new ID, not one of the replayed ones.
	third, err := cl.CreateSchema(t.Context(), "shipments-value", sr.Schema{Schema: `{"type":"long"}`})
	require.NoError(t, err)
	assert.Greater(t, third.ID, gone.ID)

	kc, err = kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer kc.Close()
	fs := kc.PollRecords(t.Context(), 1)
	require.NoError(t, fs.Err())
	assert.Equal(t, "kept", string(fs.Records()[0].Value))
}

func TestAvroCompatibilityIsEnforced(t *testing.T) {
	t.Parallel()
	r, err := registry.Start("127.0.0.1:0", "")
	require.NoError(t, err)
	defer r.Close()
	cl := client(t, r.URL())
	ctx := t.Context()
	_, err = cl.CreateSchema(ctx, "s-value", sr.Schema{Schema: v1})
	require.NoError(t, err)
	_, err = cl.CreateSchema(ctx, "s-value", sr.Schema{Schema: v2})
	require.NoError(t, err, "a field added with a default is BACKWARD compatible")

	_, err = cl.CreateSchema(ctx, "s-value", sr.Schema{Schema: v3})
	re, ok := err.(*sr.ResponseError)
	require.True(t, ok, "want a registry error, got %v", err)
	assert.Equal(t, 409, re.StatusCode)
	assert.Contains(t, re.Message, "qty")

	res, err := cl.CheckCompatibility(ctx, "s-value", -1, sr.Schema{Schema: v3})
	require.NoError(t, err)
	assert.False(t, res.Is)
	res, err = cl.CheckCompatibility(ctx, "s-value", -1, sr.Schema{Schema: v2})
	require.NoError(t, err)
	assert.True(t, res.Is)

	_, err = cl.CreateSchema(ctx, "s-value", sr.Schema{Schema: `{"type":"record"`})
	re, ok = err.(*sr.ResponseError)
	require.True(t, ok, "want a registry error, got %v", err)
	assert.Equal(t, 422, re.StatusCode)

	// FORWARD: old readers must read new data; removing a field without a
	// default breaks them.
	require.NoError(t, cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "f-value")[0].Err)
	_, err = cl.CreateSchema(ctx, "f-value", sr.Schema{Schema: v3})
	require.NoError(t, err)
	_, err = cl.CreateSchema(ctx, "f-value", sr.Schema{Schema: v1})
	assert.Error(t, err, "FORWARD: v3 readers cannot read v1 data (no qty)")

	// NONE checks nothing.
	require.NoError(t, cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "n-value")[0].Err)
	_, err = cl.CreateSchema(ctx, "n-value", sr.Schema{Schema: v1})
	require.NoError(t, err)
	_, err = cl.CreateSchema(ctx, "n-value", sr.Schema{Schema: v3})
	assert.NoError(t, err)
}

// A journal line cut short by a crash is dropped; the lines before it are
// replayed.
func TestAJournalCutShortIsReplayedUpToTheCut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := registry.Start("127.0.0.1:0", dir)
	require.NoError(t, err)
	s, err := client(t, r.URL()).CreateSchema(t.Context(), "a-value", sr.Schema{Schema: v1})
	require.NoError(t, err)
	r.Close()
	f, err := os.OpenFile(filepath.Join(dir, registry.JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"method":"POST","path":"/subjects/b-value/vers`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	r, err = registry.Start("127.0.0.1:0", dir)
	require.NoError(t, err)
	defer r.Close()
	got, err := client(t, r.URL()).SchemaByVersion(t.Context(), "a-value", 1)
	require.NoError(t, err)
	assert.Equal(t, s.ID, got.ID)
	subjects, err := client(t, r.URL()).Subjects(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"a-value"}, subjects)
}

// Registering a schema the subject has already answers its ID and journals
// nothing new.
func TestRegisteringTheSameSchemaTwiceJournalsItOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := registry.Start("127.0.0.1:0", dir)
	require.NoError(t, err)
	defer r.Close()
	cl := client(t, r.URL())
	first, err := cl.CreateSchema(t.Context(), "a-value", sr.Schema{Schema: v1})
	require.NoError(t, err)
	again, err := cl.CreateSchema(t.Context(), "a-value", sr.Schema{Schema: v1})
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, first.Version, again.Version)
	b, err := os.ReadFile(filepath.Join(dir, registry.JournalFile))
	require.NoError(t, err)
	assert.Equal(t, 1, bytes.Count(b, []byte("\n")), "journal:\n%s", b)
}
