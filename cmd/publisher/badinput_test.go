package main_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gw "github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// TestPublisherAnswersBadInputWithAClearErrorAndKeepsRunning sends every
// kind of bad request to a running publisher: each gets a JSON error with
// the status a client can act on, nothing reaches Kafka, and the process
// still accepts a good event afterwards.
func TestPublisherAnswersBadInputWithAClearErrorAndKeepsRunning(t *testing.T) {
	t.Parallel()
	_, broker := proctest.Broker(t, "")
	topic, poison := kafkatest.Unique("orders"), kafkatest.Unique("poison")
	g := startGateway(t, broker, nil, "--config", proctest.WriteConfig(t,
		"poison:\n  topic: "+poison+"\n"+
			"publisher:\n  max_body_bytes: 64\n"))

	tests := []struct {
		name      string
		topic     string // path segment, escaped as a client would send it
		body      string
		header    []string
		want      int
		wantError string
	}{
		{name: "empty payload", topic: topic, body: "", want: http.StatusBadRequest, wantError: "empty body"},
		{name: "payload over max_body_bytes", topic: topic, body: strings.Repeat("x", 65), want: http.StatusRequestEntityTooLarge, wantError: "body exceeds publisher.max_body_bytes (64 bytes)"},
		{name: "key with a tab", topic: topic, body: "x", header: []string{"X-Event-Key", "customer\t7"}, want: http.StatusBadRequest, wantError: "header X-Event-Key: must not contain control characters"},
		{name: "key with a C1 control char", topic: topic, body: "x", header: []string{"X-Event-Key", "customer\u00857"}, want: http.StatusBadRequest, wantError: "header X-Event-Key: must not contain control characters"},
		{name: "key not UTF-8", topic: topic, body: "x", header: []string{"X-Event-Key", "customer\xff"}, want: http.StatusBadRequest, wantError: "header X-Event-Key: must be valid UTF-8"},
		{name: "key too long", topic: topic, body: "x", header: []string{"X-Event-Key", strings.Repeat("k", gw.MaxHeaderBytes+1)}, want: http.StatusBadRequest, wantError: "header X-Event-Key: must be at most 256 bytes, got 257"},
		{name: "duplicate X-Event-ID", topic: topic, body: "x", header: []string{"X-Event-ID", "evt-1", "X-Event-ID", "evt-2"}, want: http.StatusBadRequest, wantError: "header X-Event-ID: given 2 times, want at most once"},
		{name: "correlation ID too long", topic: topic, body: "x", header: []string{"X-Correlation-ID", strings.Repeat("c", gw.MaxHeaderBytes+1)}, want: http.StatusBadRequest, wantError: "header X-Correlation-ID: must be at most 256 bytes"},
		{name: "topic with a slash", topic: "a%2Fb", body: "x", want: http.StatusBadRequest, wantError: `invalid topic name: must contain only letters, digits, '.', '_' and '-', got "a/b"`},
		{name: "topic ..", topic: "%2E%2E", body: "x", want: http.StatusBadRequest, wantError: `invalid topic name: must not be "." or "..", got ".."`},
		{name: "topic of 250 characters", topic: strings.Repeat("t", 250), body: "x", want: http.StatusBadRequest, wantError: "invalid topic name: must be at most 249 characters, got 250"},
		{name: "topic with a space", topic: "bad%20topic", body: "x", want: http.StatusBadRequest, wantError: `invalid topic name: must contain only letters, digits, '.', '_' and '-', got "bad topic"`},
		{name: "unicode topic", topic: "bestellungen-%C3%A4", body: "x", want: http.StatusBadRequest, wantError: `invalid topic name: must contain only letters, digits, '.', '_' and '-', got "bestellungen-ä"`},
		{name: "poison topic", topic: poison, body: "x", want: http.StatusForbidden, wantError: "is the poison topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := g.post(t, "/v1/events/"+tt.topic, tt.body, tt.header...)

			assert.Equal(t, tt.want, a.status, "body: %s", a.raw)
			assert.Contains(t, a.body["error"], tt.wantError)
			assert.Equal(t, "application/json", a.header.Get("Content-Type"))
		})
	}

	good := g.post(t, "/v1/events/"+topic, "good", "X-Event-ID", "evt-good")
	require.Equal(t, http.StatusAccepted, good.status, "a good event after the bad ones; body: %s", good.raw)
	code, body := g.get(t, "/healthz")
	assert.Equal(t, http.StatusOK, code, "/healthz after the bad requests: %s", body)
	recs := kafkatest.Read(t, broker, topic, 1, 10*time.Second)
	assert.Equal(t, int64(1), kafkatest.Count(t, broker, topic), "only the good event reaches the topic: %s", kafkatest.Describe(recs))
	assert.Equal(t, int64(0), kafkatest.Count(t, broker, poison), "records on the poison topic")
	g.proc.Stop(20 * time.Second)
}

// TestPublisherRefusesToStartOnBadSettings starts the publisher with one
// mistake in its settings each time: it exits non-zero at once with a
// message naming the setting, rather than running with a default.
func TestPublisherRefusesToStartOnBadSettings(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/publisher")

	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{
			name: "config key typo",
			args: []string{"--config", proctest.WriteConfig(t, "publisher:\n  allowed_topic: [orders]\n")},
			want: "publisher.allowed_topic: unknown key",
		},
		{
			name: "number given as a word",
			args: []string{"--config", proctest.WriteConfig(t, "retry:\n  max_retries: lots\n")},
			want: `retry.max_retries: must be a whole number, got "lots"`,
		},
		{
			name: "duration without a unit",
			args: []string{"--config", proctest.WriteConfig(t, "shutdown_timeout: soon\n")},
			want: `shutdown_timeout: must be a duration with a unit, such as "30s", got "soon"`,
		},
		{
			name: "unknown CLI flag",
			args: []string{"--nope"},
			want: "flag provided but not defined: -nope",
		},
		{
			name: "unknown EVENTFX_ variable",
			env:  proctest.Env("EVENTFX_RETRY_MAXRETRIES", "3"),
			want: "EVENTFX_RETRY_MAXRETRIES: environment variable matches no config key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := append(proctest.Env("EVENTFX_HTTP_ADDR", proctest.FreeAddr(t)), tt.env...)
			out, code := proctest.Run(t, 20*time.Second, nil, env, bin, tt.args...)

			assert.NotEqual(t, 0, code, "exit code; output: %s", out)
			assert.Contains(t, out, tt.want)
		})
	}
}
