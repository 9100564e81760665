package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// gateway is a running publisher process.
type gateway struct {
	proc *proctest.Proc
	url  string
}

// startGateway starts the publisher on a free port against the broker at
// brokerAddr, with extra environment and arguments, and waits until
// /readyz says ready.
func startGateway(t *testing.T, brokerAddr string, env []string, args ...string) gateway {
	t.Helper()
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/publisher")
	addr := proctest.FreeAddr(t)
	env = append(proctest.Env(
		"EVENTFX_KAFKA_BROKERS", brokerAddr,
		"EVENTFX_HTTP_ADDR", addr,
		"EVENTFX_SERVICE", kafkatest.Unique("gateway"),
	), env...)
	g := gateway{proc: proctest.Start(t, bin, env, args...), url: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(g.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("publisher not ready within 20s (last: %v, %v); output:\n%s", status(res), err, g.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func status(res *http.Response) any {
	if res == nil {
		return "no answer"
	}
	return res.Status
}

// answer is an HTTP answer of the gateway.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]string
}

// post sends body to path with the header pairs kv.
func (g gateway) post(t *testing.T, path, body string, kv ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+path, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	c := http.Client{Timeout: 20 * time.Second}
	res, err := c.Do(req)
	require.NoError(t, err, "POST %s", path)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	require.NoError(t, json.Unmarshal(raw, &a.body), "POST %s: status %d, body %q is not a JSON object of strings", path, res.StatusCode, raw)
	return a
}

func (g gateway) get(t *testing.T, path string) (int, string) {
	t.Helper()
	res, err := http.Get(g.url + path)
	require.NoError(t, err, "GET %s", path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestPublisherWritesEventsToKafka(t *testing.T) {
	t.Parallel()
	_, broker := proctest.Broker(t, "")
	g := startGateway(t, broker, nil)
	topic := kafkatest.Unique("orders")

	a := g.post(t, "/v1/events/"+topic, `{"total":42}`,
		"X-Correlation-ID", "corr-1", "X-Event-Key", "customer-7", "X-Event-ID", "evt-1",
		"Content-Type", "application/json")
	require.Equal(t, http.StatusAccepted, a.status, "body: %s", a.raw)
	assert.Equal(t, map[string]string{"id": "evt-1", "topic": topic, "correlation_id": "corr-1"}, a.body)

	plain := g.post(t, "/v1/events/"+topic, "no headers")
	require.Equal(t, http.StatusAccepted, plain.status, "body: %s", plain.raw)
	require.NotEmpty(t, plain.body["id"])
	require.NotEmpty(t, plain.body["correlation_id"])

	recs := kafkatest.Read(t, broker, topic, 2, 10*time.Second)
	byID := map[string]*kgo.Record{}
	for _, r := range recs {
		byID[kafkatest.Headers(r)["_watermill_message_uuid"]] = r
	}
	require.Contains(t, byID, "evt-1", "records: %s", kafkatest.Describe(recs))
	require.Contains(t, byID, plain.body["id"], "records: %s", kafkatest.Describe(recs))

	r := byID["evt-1"]
	assert.Equal(t, `{"total":42}`, string(r.Value))
	assert.Equal(t, "customer-7", string(r.Key))
	assert.Equal(t, map[string]string{
		"_watermill_message_uuid": "evt-1",
		"correlation_id":          "corr-1",
		"content_type":            "application/json",
	}, kafkatest.Headers(r))

	r = byID[plain.body["id"]]
	assert.Equal(t, "no headers", string(r.Value))
	assert.Nil(t, r.Key, "an event without X-Event-Key has no Kafka key")
	assert.Equal(t, plain.body["correlation_id"], kafkatest.Headers(r)["correlation_id"])

	code, metrics := g.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, metrics, `eventfx_messages_published_total{outcome="published",topic="`+topic+`"} 2`)
	assert.Contains(t, metrics, `eventfx_http_requests_total{code="202",route="/v1/events/{topic}"} 2`)
	assert.Contains(t, metrics, `eventfx_http_request_duration_seconds_count{route="/v1/events/{topic}"} 2`)

	g.proc.Stop(20 * time.Second)
}

func TestPublisherRejectsBadRequests(t *testing.T) {
	t.Parallel()
	_, broker := proctest.Broker(t, "")
	allowed, poison := kafkatest.Unique("orders"), kafkatest.Unique("poison")
	cfgFile := filepath.Join(t.TempDir(), "publisher.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(
		"poison:\n  topic: "+poison+"\n"+
			"publisher:\n  allowed_topics: ["+allowed+"]\n  max_body_bytes: 64\n"), 0o600))
	const token = "tok-3f9a1c"
	g := startGateway(t, broker, proctest.Env("EVENTFX_HTTP_AUTH_TOKEN", token), "--config", cfgFile)
	auth := []string{"Authorization", "Bearer " + token}

	tests := []struct {
		name      string
		topic     string
		body      string
		header    []string
		want      int
		wantError string
	}{
		{name: "bad topic name", topic: "bad$topic", body: "x", header: auth, want: http.StatusBadRequest, wantError: "invalid topic name"},
		{name: "empty body", topic: allowed, body: "", header: auth, want: http.StatusBadRequest, wantError: "empty body"},
		{name: "key too long", topic: allowed, body: "x", header: append([]string{"X-Event-Key", strings.Repeat("k", 300)}, auth...), want: http.StatusBadRequest, wantError: "X-Event-Key"},
		{name: "no token", topic: allowed, body: "x", want: http.StatusUnauthorized, wantError: "missing bearer token"},
		{name: "wrong token", topic: allowed, body: "x", header: []string{"Authorization", "Bearer " + token + "x"}, want: http.StatusUnauthorized, wantError: "invalid bearer token"},
		{name: "topic not allowed", topic: kafkatest.Unique("other"), body: "x", header: auth, want: http.StatusForbidden, wantError: "not allowed"},
		{name: "poison topic", topic: poison, body: "x", header: auth, want: http.StatusForbidden, wantError: "poison topic"},
		{name: "body too large", topic: allowed, body: strings.Repeat("x", 65), header: auth, want: http.StatusRequestEntityTooLarge, wantError: "64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := g.post(t, "/v1/events/"+tt.topic, tt.body, tt.header...)

			assert.Equal(t, tt.want, a.status, "body: %s", a.raw)
			assert.Contains(t, a.body["error"], tt.wantError)
			assert.NotContains(t, a.raw, token)
		})
	}
	t.Run("WWW-Authenticate", func(t *testing.T) {
		a := g.post(t, "/v1/events/"+allowed, "x")
		assert.True(t, strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer"), "WWW-Authenticate: %q", a.header.Get("WWW-Authenticate"))
	})

	// Only the one valid request reaches Kafka.
	ok := g.post(t, "/v1/events/"+allowed, strings.Repeat("x", 64), auth...)
	require.Equal(t, http.StatusAccepted, ok.status, "body: %s", ok.raw)
	assert.Equal(t, int64(1), kafkatest.Count(t, broker, allowed), "records on the allowed topic")
	assert.Equal(t, int64(0), kafkatest.Count(t, broker, poison), "records on the poison topic")
	assert.NotContains(t, g.proc.Output(), token, "the token must never be logged")
}

func TestPublisherAnswers503WhenTheBrokerIsDown(t *testing.T) {
	t.Parallel()
	b, broker := proctest.Broker(t, "")
	g := startGateway(t, broker, nil)
	topic := kafkatest.Unique("orders")
	require.Equal(t, http.StatusAccepted, g.post(t, "/v1/events/"+topic, "before").status)

	b.Stop(20 * time.Second)
	a := g.post(t, "/v1/events/"+topic, "after", "X-Event-ID", "evt-down")

	assert.Equal(t, http.StatusServiceUnavailable, a.status, "body: %s", a.raw)
	assert.Contains(t, a.body["error"], "broker unavailable")
	code, _ := g.get(t, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "/readyz with the broker down")
	g.proc.Stop(30 * time.Second)
	assert.Regexp(t, `level=ERROR msg="publish failed" .*message_id=evt-down`, g.proc.Output())
}

func TestPublisherRefusesAnInvalidConfig(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/publisher")
	out, code := proctest.Run(t, 20*time.Second, nil, proctest.Env(
		"EVENTFX_PUBLISHER_ALLOWED_TOPICS", "orders,eventfx.poison",
		"EVENTFX_PUBLISHER_MAX_BODY_BYTES", "-1",
	), bin)

	assert.NotEqual(t, 0, code, "output: %s", out)
	assert.Contains(t, out, "publisher.allowed_topics[1]: must not be the poison topic")
	assert.Contains(t, out, "publisher.max_body_bytes")
}
