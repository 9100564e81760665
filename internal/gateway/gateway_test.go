package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/meta"
)

const token = "s3cret-token"

// fakePublisher records what it published, as *app.Publisher would build
// it; err makes it fail, block makes it wait (ignoring ctx, as a Sarama
// send does) until the test ends.
type fakePublisher struct {
	err   error
	block chan struct{}

	mu     sync.Mutex
	topics []string
	msgs   []*message.Message
}

func (f *fakePublisher) Publish(ctx context.Context, topic string, payload []byte, opts ...app.PublishOption) (*message.Message, error) {
	if f.block != nil {
		<-f.block
	}
	if f.err != nil {
		return nil, f.err
	}
	m := message.NewMessage("publisher-generated", payload)
	for _, o := range opts {
		o(m)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.topics = append(f.topics, topic)
	f.msgs = append(f.msgs, m)
	return m, nil
}

func (f *fakePublisher) published() ([]string, []*message.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.topics, f.msgs
}

type env struct {
	mux *http.ServeMux
	pub *fakePublisher
	reg *prometheus.Registry
}

func newEnv(t *testing.T, cfg gateway.Config, pub *fakePublisher) env {
	t.Helper()
	reg := prometheus.NewRegistry()
	g, err := gateway.New(cfg, pub, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	g.Mount(mux)
	return env{mux: mux, pub: pub, reg: reg}
}

func (e env) do(method, path string, header http.Header, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return rec
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var authed = hdr("Authorization", "Bearer "+token)

func with(h http.Header, kv ...string) http.Header {
	out := h.Clone()
	for i := 0; i < len(kv); i += 2 {
		out.Add(kv[i], kv[i+1])
	}
	return out
}

func TestGatewayAnswersEveryStatusOfTheContract(t *testing.T) {
	cfg := gateway.Config{
		AllowedTopics: []string{"orders", "eventfx.poison"},
		MaxBodyBytes:  16,
		AuthToken:     token,
	}
	tests := []struct {
		name      string
		method    string
		path      string
		header    http.Header
		body      string
		pubErr    error
		want      int
		wantError string // substring of the JSON "error"
	}{
		{name: "accepted", path: "/v1/events/orders", header: authed, body: "{}", want: http.StatusAccepted},
		{name: "bad topic name", path: "/v1/events/or$ders", header: authed, body: "{}", want: http.StatusBadRequest, wantError: "invalid topic name"},
		{name: "topic with a slash", path: "/v1/events/a/b", header: authed, body: "{}", want: http.StatusBadRequest, wantError: "invalid topic name"},
		{name: "no topic", path: "/v1/events/", header: authed, body: "{}", want: http.StatusBadRequest, wantError: "must not be empty"},
		{name: "dot topic", path: "/v1/events/%2E", header: authed, body: "{}", want: http.StatusBadRequest, wantError: "invalid topic name"},
		{name: "topic too long", path: "/v1/events/" + strings.Repeat("t", 250), header: authed, body: "{}", want: http.StatusBadRequest, wantError: "at most 249"},
		{name: "empty body", path: "/v1/events/orders", header: authed, body: "", want: http.StatusBadRequest, wantError: "empty body"},
		{name: "no token", path: "/v1/events/orders", body: "{}", want: http.StatusUnauthorized, wantError: "missing bearer token"},
		{name: "other scheme", path: "/v1/events/orders", header: hdr("Authorization", "Basic "+token), body: "{}", want: http.StatusUnauthorized, wantError: "missing bearer token"},
		{name: "empty bearer", path: "/v1/events/orders", header: hdr("Authorization", "Bearer "), body: "{}", want: http.StatusUnauthorized, wantError: "missing bearer token"},
		{name: "wrong token", path: "/v1/events/orders", header: hdr("Authorization", "Bearer nope"), body: "{}", want: http.StatusUnauthorized, wantError: "invalid bearer token"},
		{name: "token prefix", path: "/v1/events/orders", header: hdr("Authorization", "Bearer "+token[:4]), body: "{}", want: http.StatusUnauthorized, wantError: "invalid bearer token"},
		{name: "no token, bad topic: 401 first", path: "/v1/events/bad$", body: "", want: http.StatusUnauthorized, wantError: "missing bearer token"},
		{name: "lower-case scheme", path: "/v1/events/orders", header: hdr("Authorization", "bearer "+token), body: "{}", want: http.StatusAccepted},
		{name: "topic not allowed", path: "/v1/events/payments", header: authed, body: "{}", want: http.StatusForbidden, wantError: `"payments" is not allowed`},
		{name: "poison topic although listed", path: "/v1/events/eventfx.poison", header: authed, body: "{}", want: http.StatusForbidden, wantError: "poison topic"},
		{name: "body too large", path: "/v1/events/orders", header: authed, body: strings.Repeat("x", 17), want: http.StatusRequestEntityTooLarge, wantError: "16 bytes"},
		{name: "body at the limit", path: "/v1/events/orders", header: authed, body: strings.Repeat("x", 16), want: http.StatusAccepted},
		{name: "key too long", path: "/v1/events/orders", header: with(authed, "X-Event-Key", strings.Repeat("k", 257)), body: "{}", want: http.StatusBadRequest, wantError: "X-Event-Key: must be at most 256 bytes"},
		{name: "key at the limit", path: "/v1/events/orders", header: with(authed, "X-Event-Key", strings.Repeat("k", 256)), body: "{}", want: http.StatusAccepted},
		{name: "id with a control character", path: "/v1/events/orders", header: with(authed, "X-Event-ID", "a\x01b"), body: "{}", want: http.StatusBadRequest, wantError: "X-Event-ID: must not contain control characters"},
		{name: "correlation ID with a newline", path: "/v1/events/orders", header: with(authed, "X-Correlation-ID", "a\nb"), body: "{}", want: http.StatusBadRequest, wantError: "X-Correlation-ID: must not contain control characters"},
		{name: "correlation ID not UTF-8", path: "/v1/events/orders", header: with(authed, "X-Correlation-ID", "a\xffb"), body: "{}", want: http.StatusBadRequest, wantError: "X-Correlation-ID: must be valid UTF-8"},
		{name: "ID given twice", path: "/v1/events/orders", header: with(authed, "X-Event-ID", "a", "X-Event-ID", "b"), body: "{}", want: http.StatusBadRequest, wantError: "X-Event-ID: given 2 times"},
		{name: "content type with DEL", path: "/v1/events/orders", header: with(authed, "Content-Type", "text/plain\x7f"), body: "{}", want: http.StatusBadRequest, wantError: "Content-Type: must not contain control characters"},
		{name: "broker unavailable", path: "/v1/events/orders", header: authed, body: "{}", pubErr: errors.New("kafka: client has run out of available brokers"), want: http.StatusServiceUnavailable, wantError: "broker unavailable"},
		{name: "too large for the broker", path: "/v1/events/orders", header: authed, body: "{}", pubErr: fmt.Errorf("publish to orders: %w", kerr.MessageTooLarge), want: http.StatusRequestEntityTooLarge, wantError: "too large for the broker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cfg, &fakePublisher{err: tt.pubErr})
			rec := e.do(http.MethodPost, tt.path, tt.header, tt.body)

			assert.Equal(t, tt.want, rec.Code, "status; body: %s", rec.Body)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.NotContains(t, rec.Body.String(), token, "the answer must never echo the token")
			var got map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), "body %q is not a JSON object of strings", rec.Body)
			assert.Contains(t, got["error"], tt.wantError)
		})
	}
}

func TestGatewayAnswers202WithTheEventAfterPublishing(t *testing.T) {
	e := newEnv(t, gateway.Config{}, &fakePublisher{})
	rec := e.do(http.MethodPost, "/v1/events/orders", hdr(
		"X-Correlation-ID", "corr-1",
		"X-Event-Key", "customer-7",
		"X-Event-ID", "evt-1",
		"Content-Type", "application/json; charset=utf-8",
		"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Tracestate", "congo=t61rcWkgMzE",
	), `{"total":42}`)

	require.Equal(t, http.StatusAccepted, rec.Code, "body: %s", rec.Body)
	assert.JSONEq(t, `{"id":"evt-1","topic":"orders","correlation_id":"corr-1"}`, rec.Body.String())
	topics, msgs := e.pub.published()
	require.Len(t, msgs, 1)
	assert.Equal(t, "orders", topics[0])
	m := msgs[0]
	assert.Equal(t, "evt-1", m.UUID)
	assert.Equal(t, `{"total":42}`, string(m.Payload))
	assert.Equal(t, message.Metadata{
		meta.CorrelationID: "corr-1",
		meta.Key:           "customer-7",
		meta.ContentType:   "application/json; charset=utf-8",
		"traceparent":      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":       "congo=t61rcWkgMzE",
	}, m.Metadata)
}

func TestGatewayGeneratesIDsAndSetsNoKeyWhenAbsent(t *testing.T) {
	e := newEnv(t, gateway.Config{}, &fakePublisher{})
	rec := e.do(http.MethodPost, "/v1/events/orders", hdr("Traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), "payload")

	require.Equal(t, http.StatusAccepted, rec.Code, "body: %s", rec.Body)
	var got gateway.Accepted
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.NotEmpty(t, got.ID)
	assert.NotEmpty(t, got.CorrelationID)
	assert.NotEqual(t, got.ID, got.CorrelationID)
	_, msgs := e.pub.published()
	require.Len(t, msgs, 1)
	assert.Equal(t, got.ID, msgs[0].UUID, "the answer's ID is the message's")
	assert.Equal(t, message.Metadata{meta.CorrelationID: got.CorrelationID}, msgs[0].Metadata,
		"no key, no content type, no invalid traceparent")
}

func TestGatewayBoundsABodyOfUnknownLength(t *testing.T) {
	e := newEnv(t, gateway.Config{MaxBodyBytes: 16}, &fakePublisher{})
	tests := []struct {
		name string
		body string
		want int
	}{
		{name: "over the limit", body: strings.Repeat("x", 17), want: http.StatusRequestEntityTooLarge},
		{name: "at the limit", body: strings.Repeat("x", 16), want: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/events/orders", io.MultiReader(strings.NewReader(tt.body)))
			req.ContentLength = -1 // chunked: only reading finds the size
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, req)

			assert.Equal(t, tt.want, rec.Code, "body: %s", rec.Body)
		})
	}
}

func TestGatewayRefusesThePoisonTopicWithAnEmptyAllowList(t *testing.T) {
	e := newEnv(t, gateway.Config{PoisonTopic: "dead.letters"}, &fakePublisher{})
	rec := e.do(http.MethodPost, "/v1/events/dead.letters", nil, "x")

	assert.Equal(t, http.StatusForbidden, rec.Code, "body: %s", rec.Body)
	rec = e.do(http.MethodPost, "/v1/events/eventfx.poison", nil, "x")
	assert.Equal(t, http.StatusAccepted, rec.Code, "only the configured poison topic is refused; body: %s", rec.Body)
}

func TestGatewayAnswers503WhenTheBrokerDoesNotAcknowledgeInTime(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	e := newEnv(t, gateway.Config{PublishTimeout: 50 * time.Millisecond}, &fakePublisher{block: block})
	rec := e.do(http.MethodPost, "/v1/events/orders", nil, "x")

	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "body: %s", rec.Body)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
}

func TestGatewayLeavesOtherMethodsToTheMux(t *testing.T) {
	e := newEnv(t, gateway.Config{}, &fakePublisher{})
	rec := e.do(http.MethodGet, "/v1/events/orders", nil, "")

	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "POST", rec.Header().Get("Allow"))
}

func TestGatewayWWWAuthenticate(t *testing.T) {
	e := newEnv(t, gateway.Config{AuthToken: token}, &fakePublisher{})
	tests := []struct {
		name   string
		header http.Header
		want   string
	}{
		{name: "missing", want: `Bearer realm="eventfx"`},
		{name: "wrong", header: hdr("Authorization", "Bearer x"), want: `Bearer realm="eventfx", error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(http.MethodPost, "/v1/events/orders", tt.header, "x")
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Equal(t, tt.want, rec.Header().Get("WWW-Authenticate"))
		})
	}
}

func TestGatewayCountsRequests(t *testing.T) {
	e := newEnv(t, gateway.Config{AllowedTopics: []string{"orders"}}, &fakePublisher{})
	e.do(http.MethodPost, "/v1/events/orders", nil, "a")
	e.do(http.MethodPost, "/v1/events/orders", nil, "b")
	e.do(http.MethodPost, "/v1/events/payments", nil, "c")

	families, err := e.reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()+labels(m)] = value(m)
		}
	}
	assert.Equal(t, map[string]float64{
		`eventfx_http_requests_total{code="202",route="/v1/events/{topic}"}`: 2,
		`eventfx_http_requests_total{code="403",route="/v1/events/{topic}"}`: 1,
		`eventfx_http_request_duration_seconds{route="/v1/events/{topic}"}`:  3,
	}, got, "publishes are counted by the transport's publisher (app.MetricsModule), not here")
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// value is a counter's value or a histogram's count.
func value(m *dto.Metric) float64 {
	if h := m.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return m.GetCounter().GetValue()
}

func TestNewRejectsAnInvalidConfig(t *testing.T) {
	_, err := gateway.New(gateway.Config{AllowedTopics: []string{"ok", "not ok"}, MaxBodyBytes: -1}, &fakePublisher{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())

	require.Error(t, err)
	assert.ErrorContains(t, err, "allowed_topics[1]")
	assert.ErrorContains(t, err, "max_body_bytes")
}

func TestNewFailsOnDuplicateMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := gateway.New(gateway.Config{}, &fakePublisher{}, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)

	_, err = gateway.New(gateway.Config{}, &fakePublisher{}, slog.New(slog.DiscardHandler), reg)
	assert.ErrorContains(t, err, "register gateway metrics")
}

// FuzzGateway checks that no request crashes the gateway and that every
// answer is JSON with a status of the contract.
func FuzzGateway(f *testing.F) {
	f.Add("orders", "payload", "key", "id", "cid", "Bearer "+token)
	f.Add("a/b", "", "\x00", "\xff", strings.Repeat("c", 300), "")
	f.Add("eventfx.poison", "x", "", "", "", "bearer  "+token+" ")
	f.Fuzz(func(t *testing.T, topic, body, key, id, cid, auth string) {
		e := newEnv(t, gateway.Config{AuthToken: token, MaxBodyBytes: 64}, &fakePublisher{})
		req := httptest.NewRequest(http.MethodPost, "/v1/events/x", strings.NewReader(body))
		req.URL.Path = "/v1/events/" + topic
		req.Header.Set("X-Event-Key", key)
		req.Header.Set("X-Event-ID", id)
		req.Header.Set("X-Correlation-ID", cid)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)

		b, _ := io.ReadAll(rec.Body)
		if rec.Code >= 300 && rec.Code < 400 || rec.Code == http.StatusNotFound {
			return // the mux redirected or refused a path it cleans
		}
		if !json.Valid(b) {
			t.Fatalf("status %d: body is not JSON: %q", rec.Code, b)
		}
		switch rec.Code {
		case http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d is not in the contract; body %s", rec.Code, b)
		}
	})
}
