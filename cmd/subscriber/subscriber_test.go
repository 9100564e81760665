package main_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

const (
	waitFor = 30 * time.Second
	pkg     = "github.com/eventfx/eventfx/cmd/subscriber"
)

// delivery is one request a webhook received.
type delivery struct {
	Header http.Header
	Body   []byte
}

// webhooks is a test HTTP server with one endpoint per route; each endpoint
// records its requests and answers with its respond function, which gets
// the 1-based number of the request.
type webhooks struct {
	*httptest.Server
	mu   sync.Mutex
	got  map[string][]delivery
	resp map[string]func(n int, w http.ResponseWriter, r *http.Request)
}

func newWebhooks(t *testing.T, resp map[string]func(n int, w http.ResponseWriter, r *http.Request)) *webhooks {
	t.Helper()
	wh := &webhooks{got: map[string][]delivery{}, resp: resp}
	wh.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		body, _ := io.ReadAll(r.Body)
		wh.mu.Lock()
		wh.got[name] = append(wh.got[name], delivery{Header: r.Header.Clone(), Body: body})
		n := len(wh.got[name])
		wh.mu.Unlock()
		respond, ok := wh.resp[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		respond(n, w, r)
	}))
	t.Cleanup(wh.Close)
	return wh
}

func (wh *webhooks) deliveries(name string) []delivery {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return append([]delivery(nil), wh.got[name]...)
}

// header returns one header of every delivery to name, in order.
func (wh *webhooks) header(name, header string) []string {
	var out []string
	for _, d := range wh.deliveries(name) {
		out = append(out, d.Header.Get(header))
	}
	return out
}

func status(code int, body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// failing answers 500 to the first n requests, then 200.
func failing(n int) func(int, http.ResponseWriter, *http.Request) {
	return func(i int, w http.ResponseWriter, _ *http.Request) {
		code := http.StatusOK
		if i <= n {
			code = http.StatusInternalServerError
		}
		w.WriteHeader(code)
	}
}

// record builds a record as eventfx writes one; id "" leaves out the ID
// header, as another producer would.
func record(topic, id, correlationID, payload string, headers ...kgo.RecordHeader) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: []byte(payload), Headers: headers}
	if id != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "_watermill_message_uuid", Value: []byte(id)})
	}
	if correlationID != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "correlation_id", Value: []byte(correlationID)})
	}
	return r
}

// waitReady waits until the process's /readyz answers 200.
func waitReady(t *testing.T, p *proctest.Proc, httpAddr string) {
	t.Helper()
	p.WaitOutput(`msg="http listening"`, waitFor)
	client := &http.Client{Timeout: time.Second}
	last := "no answer"
	kafkatest.Eventually(t, waitFor, func() bool {
		resp, err := client.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = resp.Status + " " + string(b)
		return resp.StatusCode == http.StatusOK
	}, func() string { return "/readyz: want 200, last answer: " + last + "\noutput:\n" + p.Output() })
}

// poisoned returns the poison record of handler, waiting for want records
// on the poison topic.
func poisoned(t *testing.T, addr, topic string, want int, handler string) map[string]string {
	t.Helper()
	recs := kafkatest.Read(t, addr, topic, want, waitFor)
	for _, r := range recs {
		if h := kafkatest.Headers(r); h["handler_poisoned"] == handler {
			return h
		}
	}
	t.Fatalf("no poison record of handler %q among:%s", handler, kafkatest.Describe(recs))
	return nil
}

// waitCommitted waits until group committed past n records of topic, so
// the messages are done with and no more deliveries can follow.
func waitCommitted(t *testing.T, addr, group, topic string, n int64) {
	t.Helper()
	var got int64
	kafkatest.Eventually(t, waitFor, func() bool {
		got = kafkatest.Committed(t, addr, group, topic)
		return got == n
	}, func() string { return fmt.Sprintf("group %s on %s: want %d committed, got %d", group, topic, n, got) })
}

// The relay's contract, in both consumption modes (kafka.consume).
func TestSubscriberRelaysTopicsToWebhooks(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		key := []byte("a 32-byte key for the signed hook")
		secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
		hooks := newWebhooks(t, map[string]func(int, http.ResponseWriter, *http.Request){
			"flaky":   failing(2),
			"reject":  status(http.StatusBadRequest, "invalid order:\n amount must be positive"),
			"slow":    func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			"signed":  status(http.StatusNoContent, ""),
			"foreign": failing(1),
		})
		_, addr := proctest.Broker(t, "")
		service, poison := kafkatest.Unique("relay"), kafkatest.Unique("poison")
		topics := map[string]string{}
		for _, name := range []string{"flaky", "reject", "slow", "signed", "foreign"} {
			topics[name] = kafkatest.Unique(name)
		}
		group := func(route string) string { return service + "." + route }

		// Produced before the relay starts: a new group starts at the oldest offset.
		foreign := record(topics["foreign"], "", "", "from another producer")
		kafkatest.Produce(t, addr,
			record(topics["flaky"], "evt-flaky", "corr-flaky", `{"n":1}`),
			record(topics["reject"], "evt-reject", "corr-reject", `{"n":-1}`),
			record(topics["slow"], "evt-slow", "corr-slow", `{"n":2}`),
			record(topics["signed"], "evt-signed", "corr-signed", `{"signed":true}`,
				kgo.RecordHeader{Key: "content_type", Value: []byte("application/json")},
				kgo.RecordHeader{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}),
			foreign,
		)

		httpAddr := proctest.FreeAddr(t)
		cfg := proctest.WriteConfig(t, fmt.Sprintf(`
service: %[1]s
kafka:
  brokers: [%[2]s]
  consume: %[12]s
  session_timeout: 2s
  heartbeat_interval: 200ms
  rebalance_timeout: 2s
  commit_interval: 100ms
retry:
  initial_interval: 10ms
  max_interval: 50ms
  max_retries: 3
poison:
  topic: %[3]s
shutdown_timeout: 10s
http:
  addr: %[4]s
subscriber:
  routes:
    - {name: flaky, topic: %[6]s, webhook: {url: %[5]s/flaky}}
    - {name: reject, topic: %[7]s, webhook: {url: %[5]s/reject}}
    - {name: slow, topic: %[8]s, webhook: {url: %[5]s/slow, timeout: 100ms}}
    - {name: signed, topic: %[9]s, webhook: {url: %[5]s/signed, secret: %[10]q}}
    - {name: foreign, topic: %[11]s, webhook: {url: %[5]s/foreign}}
`, service, addr, poison, httpAddr, hooks.URL,
			topics["flaky"], topics["reject"], topics["slow"], topics["signed"], secret, topics["foreign"], mode))

		p := proctest.Start(t, proctest.Build(t, pkg), nil, "--config", cfg)
		waitReady(t, p, httpAddr)

		t.Run("transient failures are retried with the same IDs", func(t *testing.T) {
			waitCommitted(t, addr, group("flaky"), topics["flaky"], 1)
			assert.Equal(t, []string{"1", "2", "3"}, hooks.header("flaky", "X-Event-Attempt"))
			assert.Equal(t, []string{"evt-flaky", "evt-flaky", "evt-flaky"}, hooks.header("flaky", "X-Event-ID"))
			assert.Equal(t, []string{"corr-flaky", "corr-flaky", "corr-flaky"}, hooks.header("flaky", "X-Correlation-ID"))
			assert.Equal(t, []string{topics["flaky"], topics["flaky"], topics["flaky"]}, hooks.header("flaky", "X-Event-Topic"))
		})

		t.Run("4xx is poisoned after one attempt", func(t *testing.T) {
			h := poisoned(t, addr, poison, 2, "reject")
			waitCommitted(t, addr, group("reject"), topics["reject"], 1)
			assert.Equal(t, []string{"1"}, hooks.header("reject", "X-Event-Attempt"))
			assert.Equal(t, "webhook "+hooks.URL+"/reject answered 400 Bad Request: invalid order: amount must be positive", h["reason_poisoned"])
			assert.Equal(t, "reject", h["handler_poisoned"])
			assert.Equal(t, topics["reject"], h["topic_poisoned"])
			assert.Equal(t, "1", h["eventfx_attempts"])
			assert.Equal(t, "evt-reject", h["_watermill_message_uuid"])
			assert.Equal(t, "corr-reject", h["correlation_id"])
			assert.Equal(t, "0", h["eventfx_original_offset"], "where it was consumed")
			assert.NotEmpty(t, h["eventfx_original_partition"])
		})

		t.Run("a webhook that never answers in time is retried then poisoned", func(t *testing.T) {
			h := poisoned(t, addr, poison, 2, "slow")
			waitCommitted(t, addr, group("slow"), topics["slow"], 1)
			assert.Equal(t, []string{"1", "2", "3", "4"}, hooks.header("slow", "X-Event-Attempt"))
			assert.Equal(t, "4", h["eventfx_attempts"], "max_retries 3 + 1")
			assert.Equal(t, "webhook "+hooks.URL+"/slow did not answer within 100ms", h["reason_poisoned"])
			assert.Equal(t, "slow", h["handler_poisoned"])
		})

		t.Run("signed deliveries verify", func(t *testing.T) {
			waitCommitted(t, addr, group("signed"), topics["signed"], 1)
			ds := hooks.deliveries("signed")
			require.Len(t, ds, 1)
			d := ds[0]
			assert.Equal(t, `{"signed":true}`, string(d.Body))
			assert.Equal(t, "application/json", d.Header.Get("Content-Type"))
			assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", d.Header.Get("traceparent"))
			mac := hmac.New(sha256.New, key)
			mac.Write(d.Body)
			assert.Equal(t, "sha256="+hex.EncodeToString(mac.Sum(nil)), d.Header.Get("X-Eventfx-Signature"))

			// Standard Webhooks: "v1,<base64 HMAC of id.timestamp.body>", id and
			// timestamp from their headers.
			id, ts := d.Header.Get("webhook-id"), d.Header.Get("webhook-timestamp")
			assert.Equal(t, "evt-signed", id)
			sec, err := strconv.ParseInt(ts, 10, 64)
			require.NoError(t, err, "webhook-timestamp %q", ts)
			assert.WithinDuration(t, time.Now(), time.Unix(sec, 0), 5*time.Minute)
			mac = hmac.New(sha256.New, key)
			mac.Write([]byte(id + "." + ts + "."))
			mac.Write(d.Body)
			assert.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), d.Header.Get("webhook-signature"))
		})

		t.Run("a record without ID gets topic-partition-offset on every attempt", func(t *testing.T) {
			waitCommitted(t, addr, group("foreign"), topics["foreign"], 1)
			want := fmt.Sprintf("%s-%d-%d", foreign.Topic, foreign.Partition, foreign.Offset)
			assert.Equal(t, []string{want, want}, hooks.header("foreign", "X-Event-ID"))
			assert.Equal(t, []string{want, want}, hooks.header("foreign", "webhook-id"))
			assert.Equal(t, []string{"1", "2"}, hooks.header("foreign", "X-Event-Attempt"))
			cids := hooks.header("foreign", "X-Correlation-ID")
			require.Len(t, cids, 2)
			assert.NotEmpty(t, cids[0], "a correlation ID is generated")
			assert.Equal(t, cids[0], cids[1], "and kept across attempts")
			assert.Equal(t, "application/octet-stream", hooks.deliveries("foreign")[0].Header.Get("Content-Type"))
		})

		t.Run("only the rejected and the timed-out messages are poisoned", func(t *testing.T) {
			recs := kafkatest.Read(t, addr, poison, 2, waitFor)
			assert.Equal(t, int64(2), kafkatest.Count(t, addr, poison), "poison records:%s", kafkatest.Describe(recs))
		})

		t.Run("SIGTERM stops it with exit code 0", func(t *testing.T) {
			p.Stop(waitFor)
		})
	})
}

func TestSubscriberWithoutRoutesRefusesToStart(t *testing.T) {
	cfg := proctest.WriteConfig(t, fmt.Sprintf("service: %s\nkafka: {brokers: [127.0.0.1:1]}\nhttp: {addr: %s}\n",
		kafkatest.Unique("relay"), proctest.FreeAddr(t)))

	out, code := proctest.Run(t, waitFor, nil, nil, proctest.Build(t, pkg), "--config", cfg)

	assert.NotEqual(t, 0, code, "exit code; output:\n%s", out)
	lines := proctest.Lines(out)
	require.NotEmpty(t, lines)
	assert.Equal(t, "subscriber: subscriber.routes: at least one route is required", lines[len(lines)-1])
}
