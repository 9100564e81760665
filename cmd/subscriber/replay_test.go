package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// TestPoisonReplayAfterTheTargetIsFixed runs the relay, the CLI and the
// broker as processes: a target that refuses a message gets it poisoned;
// once the target is fixed, `eventfx poison replay` delivers it again; a
// second replay sends nothing; --dry-run changes nothing.
func TestPoisonReplayAfterTheTargetIsFixed(t *testing.T) {
	_, addr := proctest.Broker(t, "")
	var fixed atomic.Bool
	wh := newWebhooks(t, map[string]func(int, http.ResponseWriter, *http.Request){
		"picky": func(_ int, w http.ResponseWriter, _ *http.Request) {
			if fixed.Load() {
				w.WriteHeader(http.StatusOK)
				return
			}
			w.WriteHeader(http.StatusBadRequest)
		},
	})
	topic, poisonTopic := kafkatest.Unique("orders"), kafkatest.Unique("poison")
	httpAddr := proctest.FreeAddr(t)
	cfg := proctest.WriteConfig(t, fmt.Sprintf(`
service: %s
kafka: {brokers: [%s], session_timeout: 2s, heartbeat_interval: 200ms, commit_interval: 100ms}
retry: {max_retries: 2, initial_interval: 10ms, max_interval: 50ms}
poison: {topic: %s}
http: {addr: %s}
subscriber:
  routes:
    - {name: picky, topic: %s, webhook: {url: %s/picky, timeout: 2s}}
`, kafkatest.Unique("relay"), addr, poisonTopic, httpAddr, topic, wh.URL))
	relay := proctest.Start(t, proctest.Build(t, pkg), nil, "--config", cfg)
	waitReady(t, relay, httpAddr)

	kafkatest.Produce(t, addr, record(topic, "m-1", "corr-1", `{"id":"o-1"}`))
	h := poisoned(t, addr, poisonTopic, 1, "picky")
	assert.Contains(t, h["reason_poisoned"], "answered 400")
	require.Len(t, wh.deliveries("picky"), 1)

	eventfx := proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	cli := func(args ...string) string {
		t.Helper()
		out, code := proctest.Run(t, waitFor, nil, nil, eventfx, append(args, "--brokers", addr, "--topic", poisonTopic)...)
		require.Zero(t, code, "eventfx %s: %s", strings.Join(args, " "), out)
		return out
	}

	out := cli("poison", "replay", "--dry-run")
	assert.Contains(t, out, "would replay 1")
	assert.Equal(t, int64(1), kafkatest.Count(t, addr, topic), "--dry-run wrote nothing to the original topic")

	fixed.Store(true)
	out = cli("poison", "replay")
	assert.Contains(t, out, "replayed 1,")
	kafkatest.Eventually(t, waitFor, func() bool { return len(wh.deliveries("picky")) == 2 },
		func() string {
			return fmt.Sprintf("replayed message not delivered; deliveries: %d", len(wh.deliveries("picky")))
		})
	d := wh.deliveries("picky")[1]
	assert.Equal(t, "m-1", d.Header.Get("X-Event-ID"), "same ID after replay")
	assert.Equal(t, "corr-1", d.Header.Get("X-Correlation-ID"), "same correlation ID after replay")
	assert.Equal(t, "1", d.Header.Get("X-Event-Attempt"), "a replay starts counting attempts again")
	assert.Equal(t, `{"id":"o-1"}`, string(d.Body))

	out = cli("poison", "replay")
	assert.Contains(t, out, "replayed 0,")
	assert.Equal(t, int64(2), kafkatest.Count(t, addr, topic), "the second replay sent nothing")

	relay.Stop(waitFor)
	assert.Len(t, wh.deliveries("picky"), 2, "no further delivery")
	assert.Equal(t, int64(1), kafkatest.Count(t, addr, poisonTopic), "the replayed message was not poisoned again")
}
