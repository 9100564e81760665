package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/webhook"
)

// received is one request a test webhook got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// hook is a test webhook that records requests and answers with respond.
type hook struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

// newHook starts a webhook; configure changes its server before it starts.
func newHook(t *testing.T, respond http.HandlerFunc, configure ...func(*http.Server)) *hook {
	t.Helper()
	h := &hook{}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		h.mu.Unlock()
		respond(w, r)
	}))
	for _, c := range configure {
		c(h.Config)
	}
	h.Start()
	t.Cleanup(h.Close)
	return h
}

func (h *hook) requests() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.reqs...)
}

func answer(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func route(url, secret string) config.Route {
	return config.Route{
		Name:    "billing-hook",
		Topic:   "orders",
		Webhook: config.Webhook{URL: url, Timeout: 5 * time.Second, Secret: secret},
	}
}

func relay(t *testing.T, r config.Route) handlers.Handler {
	t.Helper()
	h, err := webhook.New(r, webhook.NewClient())
	require.NoError(t, err)
	return h
}

// deliver runs one attempt of h on msg, as the retry middleware would.
func deliver(h handlers.Handler, msg *message.Message, attempt int) error {
	msg.SetContext(meta.WithAttempt(context.Background(), attempt))
	_, err := h.Func(msg)
	return err
}

func event(id, payload string) *message.Message {
	msg := message.NewMessage(id, []byte(payload))
	msg.Metadata.Set(meta.CorrelationID, "corr-"+id)
	return msg
}

// outcome names how a delivery ended, for tables.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case handlers.IsPermanent(err):
		return "permanent"
	default:
		return "transient"
	}
}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// verifyStandardWebhook checks a delivery as a Standard Webhooks receiver
// does: a timestamp within five minutes, and one of the space-separated
// "v1,<base64>" signatures equal to the HMAC-SHA256 of "id.timestamp.body".
func verifyStandardWebhook(t *testing.T, key []byte, h http.Header, body []byte) {
	t.Helper()
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	require.NotEmpty(t, id, "webhook-id")
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err, "webhook-timestamp %q is not unix seconds", ts)
	assert.WithinDuration(t, time.Now(), time.Unix(sec, 0), 5*time.Minute, "webhook-timestamp")
	want := base64.StdEncoding.EncodeToString(hmacSHA256(key, []byte(id+"."+ts+"."), body))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, value, _ := strings.Cut(sig, ",")
		if version == "v1" && hmac.Equal([]byte(value), []byte(want)) {
			return
		}
	}
	t.Fatalf("webhook-signature %q has no v1 signature %q", h.Get("webhook-signature"), want)
}

func TestWebhookHandlerIsTheRoute(t *testing.T) {
	r := route("http://127.0.0.1:1/hook", "")
	r.Retry = config.Retry{MaxRetries: 7}
	h := relay(t, r)
	assert.Equal(t, "billing-hook", h.Name)
	assert.Equal(t, "orders", h.Topic)
	assert.Empty(t, h.PublishTopic)
	assert.Equal(t, config.Retry{MaxRetries: 7}, h.Retry)
	assert.NotNil(t, h.Func)
}

func TestWebhookPostsPayloadWithEveryHeader(t *testing.T) {
	hk := newHook(t, answer(http.StatusNoContent, ""))
	secret := "plain-secret"
	h := relay(t, route(hk.URL+"/hook", secret))
	msg := event("evt-1", `{"order_id":"o1"}`)
	msg.Metadata.Set(meta.ContentType, "application/json")
	msg.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	msg.Metadata.Set("tracestate", "vendor=1")

	before := time.Now().Unix()
	require.NoError(t, deliver(h, msg, 2))
	after := time.Now().Unix()

	reqs := hk.requests()
	require.Len(t, reqs, 1)
	got := reqs[0]
	assert.Equal(t, http.MethodPost, got.Method)
	assert.Equal(t, "/hook", got.Path)
	assert.Equal(t, `{"order_id":"o1"}`, string(got.Body))
	want := map[string]string{
		"Content-Type":        "application/json",
		"X-Event-ID":          "evt-1",
		"X-Correlation-ID":    "corr-evt-1",
		"X-Event-Topic":       "orders",
		"X-Event-Attempt":     "2",
		"Traceparent":         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Tracestate":          "vendor=1",
		"Webhook-Id":          "evt-1",
		"X-Eventfx-Signature": "sha256=" + hex.EncodeToString(hmacSHA256([]byte(secret), got.Body)),
	}
	for name, value := range want {
		assert.Equal(t, value, got.Header.Get(name), "header %s", name)
	}
	ts, err := strconv.ParseInt(got.Header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	assert.True(t, ts >= before && ts <= after, "webhook-timestamp %d not within [%d, %d]", ts, before, after)
	verifyStandardWebhook(t, []byte(secret), got.Header, got.Body)
}

func TestWebhookWithoutSecretOrMetadataSendsDefaults(t *testing.T) {
	hk := newHook(t, answer(http.StatusOK, "ok"))
	h := relay(t, route(hk.URL, ""))
	msg := message.NewMessage("evt-2", []byte{0x00, 0xff})
	_, err := h.Func(msg) // no retry middleware: the first and only attempt

	require.NoError(t, err)
	reqs := hk.requests()
	require.Len(t, reqs, 1)
	got := reqs[0].Header
	assert.Equal(t, "application/octet-stream", got.Get("Content-Type"))
	assert.Equal(t, "1", got.Get("X-Event-Attempt"))
	assert.Equal(t, "evt-2", got.Get("webhook-id"))
	assert.NotEmpty(t, got.Get("webhook-timestamp"))
	// Without a correlation ID the message starts a conversation: its own ID.
	assert.Equal(t, "evt-2", got.Get("X-Correlation-ID"))
	for _, absent := range []string{"X-Eventfx-Signature", "webhook-signature", "traceparent"} {
		assert.Empty(t, got.Values(absent), "header %s", absent)
	}
	assert.Equal(t, []byte{0x00, 0xff}, reqs[0].Body)
}

func TestWebhookDecodesStandardWebhooksSecret(t *testing.T) {
	hk := newHook(t, answer(http.StatusOK, ""))
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	h := relay(t, route(hk.URL, secret))

	require.NoError(t, deliver(h, event("evt-3", "payload"), 1))

	reqs := hk.requests()
	require.Len(t, reqs, 1)
	got := reqs[0]
	verifyStandardWebhook(t, key, got.Header, got.Body)
	assert.Equal(t, "sha256="+hex.EncodeToString(hmacSHA256(key, got.Body)), got.Header.Get("X-Eventfx-Signature"),
		"X-Eventfx-Signature is keyed with the decoded secret")
}

func TestWebhookRejectsBadRoutesWithoutPrintingSecrets(t *testing.T) {
	tests := []struct {
		name, url, secret, wantErr, mustNotShow string
	}{
		{"secret not base64", "http://127.0.0.1:1/hook", "whsec_not*base64!", `route "billing-hook": webhook secret: text after "whsec_" must be base64`, "not*base64!"},
		{"empty secret key", "http://127.0.0.1:1/hook", "whsec_", `route "billing-hook": webhook secret: text after "whsec_" must not be empty`, "never shown"},
		{"relative url", "/hook?token=hidden", "", `route "billing-hook": webhook url must be an absolute http or https URL`, "hidden"},
		{"other scheme", "ftp://user:hidden@host/x", "", `route "billing-hook": webhook url must be an absolute http or https URL`, "hidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.New(route(tt.url, tt.secret), nil)
			require.EqualError(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), tt.mustNotShow)
		})
	}
}

func TestWebhookClassifiesStatusCodes(t *testing.T) {
	hk := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(code)
	})
	tests := []struct {
		code int
		want string
	}{
		{200, "ok"}, {204, "ok"},
		{408, "transient"}, {429, "transient"}, {500, "transient"}, {503, "transient"},
		{400, "permanent"}, {404, "permanent"}, {410, "permanent"}, {301, "permanent"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			h := relay(t, route(hk.URL+"/status/"+strconv.Itoa(tt.code), ""))
			err := deliver(h, event("evt", "x"), 1)
			assert.Equal(t, tt.want, outcome(err), "status %d: error %v", tt.code, err)
		})
	}
	for _, r := range hk.requests() {
		assert.NotEqual(t, "/elsewhere", r.Path, "a redirect was followed")
	}
}

func TestWebhookHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name, value string
		min, max    time.Duration
		hint        bool
	}{
		{"seconds", "2", 2 * time.Second, 2 * time.Second, true},
		{"http date", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 59 * time.Minute, time.Hour, true},
		{"date in the past", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0, true},
		{"unparsable", "soon", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hk := newHook(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tt.value)
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			err := deliver(relay(t, route(hk.URL, "")), event("evt", "x"), 1)
			assert.Equal(t, "transient", outcome(err))
			d, ok := meta.RetryAfterOf(err)
			assert.Equal(t, tt.hint, ok, "hint of %q", tt.value)
			assert.True(t, d >= tt.min && d <= tt.max, "hint %v not within [%v, %v]", d, tt.min, tt.max)
		})
	}
}

func TestWebhookTimeoutIsTransient(t *testing.T) {
	hk := newHook(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	r := route(hk.URL+"/slow", "")
	r.Webhook.Timeout = 50 * time.Millisecond

	err := deliver(relay(t, r), event("evt", "x"), 1)

	assert.Equal(t, "transient", outcome(err))
	assert.EqualError(t, err, "webhook "+hk.URL+"/slow did not answer within 50ms")
}

func TestWebhookConnectionRefusedIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String() + "/hook"
	require.NoError(t, l.Close())

	err = deliver(relay(t, route(url, "")), event("evt", "x"), 1)

	assert.Equal(t, "transient", outcome(err))
	assert.ErrorContains(t, err, "webhook "+url+": ")
	assert.ErrorContains(t, err, "connection refused")
}

func TestWebhookCancelledByTheMessageContextIsNotPermanent(t *testing.T) {
	hk := newHook(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	h := relay(t, route(hk.URL, ""))
	msg := event("evt", "x")
	ctx, cancel := context.WithCancel(meta.WithAttempt(context.Background(), 1))
	msg.SetContext(ctx)
	go func() {
		// Cancel once the request is in flight, as shutdown would.
		for len(hk.requests()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()

	_, err := h.Func(msg)

	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, handlers.IsPermanent(err))
}

func TestWebhookPermanentErrorQuotesBodyOnOneLine(t *testing.T) {
	body := "invalid\r\n\tfield:   amount\x07 " + strings.Repeat("é", 100) // é is 2 bytes: cut inside one
	hk := newHook(t, answer(http.StatusBadRequest, body))
	u := strings.Replace(hk.URL, "http://", "http://user:hidden-password@", 1) + "/hook?token=hidden-token"

	err := deliver(relay(t, route(u, "")), event("evt", "x"), 1)

	// 200 bytes = "invalid\r\n\tfield:   amount\x07 " (27 bytes) + 86 é + half of one.
	want := "webhook " + hk.URL + "/hook answered 400 Bad Request: invalid field: amount " + strings.Repeat("é", 86) + "…"
	assert.Equal(t, "permanent", outcome(err))
	assert.EqualError(t, err, want)
}

func TestWebhookErrorsNeverShowTheSecret(t *testing.T) {
	const secret = "whsec_c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM="
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusedURL := "http://" + refused.Addr().String()
	require.NoError(t, refused.Close())
	tests := []struct {
		name    string
		respond http.HandlerFunc
		url     func(server string) string
	}{
		{"400", answer(400, "nope"), func(s string) string { return s }},
		{"500", answer(500, "down"), func(s string) string { return s }},
		{"timeout", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, func(s string) string { return s }},
		{"refused", answer(200, ""), func(string) string { return refusedURL }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hk := newHook(t, tt.respond)
			r := route(tt.url(hk.URL), secret)
			r.Webhook.Timeout = 50 * time.Millisecond
			err := deliver(relay(t, r), event("evt", "x"), 1)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM")
			assert.NotContains(t, err.Error(), "secret-key-bytes")
		})
	}
}

func TestWebhookDrainsResponsesSoConnectionsAreReused(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	hk := newHook(t, answer(http.StatusInternalServerError, strings.Repeat("x", 32<<10)), func(s *http.Server) {
		s.ConnState = func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
	})
	h := relay(t, route(hk.URL, ""))

	for attempt := 1; attempt <= 3; attempt++ {
		require.Error(t, deliver(h, event("evt", "x"), attempt))
	}

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, conns, "connections opened for 3 deliveries")
}

func TestWebhookNilClientGetsItsOwn(t *testing.T) {
	hk := newHook(t, answer(http.StatusOK, ""))
	h, err := webhook.New(route(hk.URL, ""), nil)
	require.NoError(t, err)
	assert.NoError(t, deliver(h, event("evt", "x"), 1))
}

func TestWebhookVerifiesTLSCertificates(t *testing.T) {
	var calls int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls++
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	// The test server's certificate is self-signed: the default client must refuse it.
	err := deliver(relay(t, route(srv.URL+"/hook", "")), event("e1", "{}"), 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.Zero(t, calls, "nothing was delivered to an untrusted server")

	// A client that trusts the server's CA delivers.
	trusting, err := webhook.New(route(srv.URL+"/hook", ""), srv.Client())
	require.NoError(t, err)
	require.NoError(t, deliver(trusting, event("e2", "{}"), 1))
	assert.Equal(t, 1, calls)
}

// A replayed message reaches the receiver as the original did: the replay
// headers (its count, the consumer group it is for) stay on Kafka.
func TestWebhookSendsNoReplayHeaders(t *testing.T) {
	hk := newHook(t, answer(http.StatusNoContent, ""))
	h := relay(t, route(hk.URL, ""))
	msg := event("evt-3", `{}`)
	msg.Metadata.Set(meta.Replayed, "1")
	msg.Metadata.Set(meta.ReplayFor, "relay.hook")

	require.NoError(t, deliver(h, msg, 1))

	reqs := hk.requests()
	require.Len(t, reqs, 1)
	for name, values := range reqs[0].Header {
		assert.NotContains(t, strings.ToLower(name), "replay", "header %s: %v", name, values)
		assert.NotContains(t, values, "relay.hook", "header %s", name)
	}
	assert.Equal(t, "evt-3", reqs[0].Header.Get("X-Event-ID"), "the same event ID as the first delivery")
}
