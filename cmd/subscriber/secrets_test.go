package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// secret returns a random string that cannot appear anywhere by chance.
func secret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + hex.EncodeToString(b)
}

// saslBroker runs `eventfx broker` requiring SCRAM-SHA-256 for user with
// password, and returns it with its address.
func saslBroker(t *testing.T, user, password string) (*proctest.Proc, string) {
	t.Helper()
	addr := proctest.FreeAddr(t)
	p := proctest.Start(t, proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx"), nil,
		"broker", "--addr", addr, "--data-dir", "", "--sasl", "SCRAM-SHA-256:"+user+":"+password)
	p.WaitOutput(`broker listening on `+regexp.QuoteMeta(addr), waitFor)
	return p, addr
}

// saslClient is a franz-go client of addr that authenticates with
// SCRAM-SHA-256, closed at cleanup.
func saslClient(t *testing.T, addr, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return kafkatest.Client(t, addr, append([]kgo.Opt{kgo.AllowAutoTopicCreation(),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha256Mechanism())}, opts...)...)
}

// httpGet returns the status and body of url, with headers kv.
func httpGet(t *testing.T, url string, kv ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err, "GET %s", url)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// assertNoSecret asserts that none of secrets appears in any of the texts.
func assertNoSecret(t *testing.T, secrets map[string]string, texts map[string]string) {
	t.Helper()
	for what, text := range texts {
		for name, s := range secrets {
			assert.NotContains(t, text, s, "the %s appears in %s", name, what)
		}
	}
}

func TestSubscriberNeverShowsItsSecrets(t *testing.T) {
	const user = "relay"
	secrets := map[string]string{
		"SASL password":  secret(t, "sasl-"),
		"auth token":     secret(t, "token-"),
		"webhook secret": secret(t, "hook-"),
	}
	password := secrets["SASL password"]
	broker, addr := saslBroker(t, user, password)

	hooks := newWebhooks(t, map[string]func(int, http.ResponseWriter, *http.Request){
		"ok":     status(http.StatusOK, "thanks"),
		"reject": status(http.StatusBadRequest, "no such customer"),
	})
	service, poison := kafkatest.Unique("secrets"), kafkatest.Unique("poison")
	okTopic, rejectTopic := kafkatest.Unique("ok"), kafkatest.Unique("reject")
	httpAddr := proctest.FreeAddr(t)
	cfg := proctest.WriteConfig(t, fmt.Sprintf(`
service: %[1]s
kafka:
  brokers: [%[2]s]
  sasl: {mechanism: SCRAM-SHA-256, username: %[3]s, password: %[4]q}
  session_timeout: 2s
  heartbeat_interval: 200ms
  rebalance_timeout: 2s
  commit_interval: 100ms
retry:
  initial_interval: 10ms
  max_interval: 50ms
  max_retries: 2
poison:
  topic: %[5]s
shutdown_timeout: 10s
http:
  addr: %[6]s
  auth_token: %[7]q
observability:
  log: {level: debug}
subscriber:
  routes:
    - {name: ok, topic: %[8]s, webhook: {url: %[9]s/ok, secret: %[10]q}}
    - {name: reject, topic: %[11]s, webhook: {url: %[9]s/reject, secret: %[10]q}}
`, service, addr, user, password, poison, httpAddr, secrets["auth token"],
		okTopic, hooks.URL, secrets["webhook secret"], rejectTopic))

	p := proctest.Start(t, proctest.Build(t, pkg), nil, "--config", cfg)
	waitReady(t, p, httpAddr)

	producer := saslClient(t, addr, user, password)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, producer.ProduceSync(ctx,
		record(okTopic, "evt-ok-1", "corr-ok-1", `{"n":1}`),
		record(okTopic, "evt-ok-2", "corr-ok-2", `{"n":2}`),
		record(rejectTopic, "evt-reject", "corr-reject", `{"n":-1}`),
	).FirstErr())

	// The poisoned record, read back over SASL.
	reader := saslClient(t, addr, user, password, kgo.ConsumeTopics(poison), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var poisonRec *kgo.Record
	for poisonRec == nil {
		fs := reader.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "no poison record within %s; output:\n%s", waitFor, p.Output())
		fs.EachRecord(func(r *kgo.Record) { poisonRec = r })
	}
	h := kafkatest.Headers(poisonRec)
	assert.Equal(t, "reject", h["handler_poisoned"])
	assert.Contains(t, h["reason_poisoned"], "400")
	kafkatest.Eventually(t, waitFor, func() bool { return len(hooks.deliveries("ok")) >= 2 },
		func() string { return fmt.Sprintf("ok deliveries: want 2, got %d", len(hooks.deliveries("ok"))) })

	_, metrics := httpGet(t, "http://"+httpAddr+"/metrics")
	assert.Contains(t, metrics, "# TYPE", "a Prometheus exposition")
	readyCode, ready := httpGet(t, "http://"+httpAddr+"/readyz")
	assert.Equal(t, http.StatusOK, readyCode)
	_, health := httpGet(t, "http://"+httpAddr+"/healthz")

	p.Stop(waitFor)

	var headers, delivered strings.Builder
	for _, hd := range poisonRec.Headers {
		fmt.Fprintf(&headers, "%s: %s\n", hd.Key, hd.Value)
	}
	fmt.Fprintf(&headers, "value: %s\n", poisonRec.Value)
	for _, name := range []string{"ok", "reject"} {
		for _, d := range hooks.deliveries(name) {
			fmt.Fprintf(&delivered, "%v %s\n", d.Header, d.Body)
		}
	}
	assert.Contains(t, p.Output(), `level=DEBUG`, "the run logs at debug level")
	assertNoSecret(t, secrets, map[string]string{
		"the subscriber's output": p.Output(),
		"the broker's output":     broker.Output(),
		"/metrics":                metrics,
		"/readyz":                 ready,
		"/healthz":                health,
		"the poison record":       headers.String(),
		"the webhook deliveries":  delivered.String(),
	})
}

func TestSubscriberWithAWrongSASLPasswordDoesNotShowIt(t *testing.T) {
	const user = "relay"
	right, wrong := secret(t, "right-"), secret(t, "wrong-")
	broker, addr := saslBroker(t, user, right)
	cfg := proctest.WriteConfig(t, fmt.Sprintf(`
service: %s
kafka:
  brokers: [%s]
  sasl: {mechanism: SCRAM-SHA-256, username: %s, password: %q}
http: {addr: %s}
observability: {log: {level: debug}}
subscriber:
  routes:
    - {name: ok, topic: %s, webhook: {url: http://127.0.0.1:1/ok}}
`, kafkatest.Unique("secrets"), addr, user, wrong, proctest.FreeAddr(t), kafkatest.Unique("ok")))

	start := time.Now()
	out, code := proctest.Run(t, waitFor, nil, nil, proctest.Build(t, pkg), "--config", cfg)

	lines := proctest.Lines(out)
	require.NotEmpty(t, lines)
	t.Logf("failed after %s: %s", time.Since(start).Round(time.Millisecond), lines[len(lines)-1])
	assert.NotEqual(t, 0, code, "a wrong password stops start-up; output:\n%s", out)
	assertNoSecret(t, map[string]string{"wrong password": wrong, "right password": right},
		map[string]string{"the subscriber's output": out, "the broker's output": broker.Output()})
}

func TestPublisherNeverShowsItsSecrets(t *testing.T) {
	const user = "gateway"
	secrets := map[string]string{
		"SASL password": secret(t, "sasl-"),
		"auth token":    secret(t, "token-"),
		"wrong token":   secret(t, "wrong-"),
	}
	broker, addr := saslBroker(t, user, secrets["SASL password"])
	httpAddr := proctest.FreeAddr(t)
	base := "http://" + httpAddr
	p := proctest.Start(t, proctest.Build(t, "github.com/eventfx/eventfx/cmd/publisher"), proctest.Env(
		"EVENTFX_SERVICE", kafkatest.Unique("gateway"),
		"EVENTFX_KAFKA_BROKERS", addr,
		"EVENTFX_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256",
		"EVENTFX_KAFKA_SASL_USERNAME", user,
		"EVENTFX_KAFKA_SASL_PASSWORD", secrets["SASL password"],
		"EVENTFX_HTTP_ADDR", httpAddr,
		"EVENTFX_HTTP_AUTH_TOKEN", secrets["auth token"],
		"EVENTFX_OBSERVABILITY_LOG_LEVEL", "debug",
	))
	kafkatest.Eventually(t, waitFor, func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, func() string { return "publisher not ready; output:\n" + p.Output() })

	topic := kafkatest.Unique("events")
	post := func(token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/v1/events/"+topic, strings.NewReader(`{"n":1}`))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := (&http.Client{Timeout: waitFor}).Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		var hs strings.Builder
		for k, v := range res.Header {
			fmt.Fprintf(&hs, "%s: %v\n", k, v)
		}
		return res.StatusCode, hs.String() + string(b)
	}
	wrongCode, wrongAnswer := post(secrets["wrong token"])
	assert.Equal(t, http.StatusUnauthorized, wrongCode, wrongAnswer)
	noneCode, noneAnswer := post("")
	assert.Equal(t, http.StatusUnauthorized, noneCode, noneAnswer)
	goodCode, goodAnswer := post(secrets["auth token"])
	assert.Equal(t, http.StatusAccepted, goodCode, goodAnswer)

	_, metrics := httpGet(t, base+"/metrics")
	assert.Contains(t, metrics, "# TYPE", "a Prometheus exposition")
	_, ready := httpGet(t, base+"/readyz")
	_, health := httpGet(t, base+"/healthz")

	p.Stop(waitFor)

	assert.Contains(t, p.Output(), `level=DEBUG`, "the run logs at debug level")
	assertNoSecret(t, secrets, map[string]string{
		"the publisher's output": p.Output(),
		"the broker's output":    broker.Output(),
		"the 401 answer":         wrongAnswer + noneAnswer,
		"the 202 answer":         goodAnswer,
		"/metrics":               metrics,
		"/readyz":                ready,
		"/healthz":               health,
	})
}
