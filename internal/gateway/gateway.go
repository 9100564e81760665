// Package gateway is the HTTP → Kafka event gateway of cmd/publisher:
// POST /v1/events/{topic} publishes the request body as one event and
// answers 202 once the broker acknowledged the write (the contract is in
// docs/services.md).
package gateway

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/ids"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/tracing"
)

// Pattern is the gateway's route on an http.ServeMux. The wildcard takes
// the rest of the path, so that a missing or slash-containing topic gets the
// contract's 400 rather than the mux's 404.
const Pattern = "POST /v1/events/{topic...}"

// route is the route's label in metrics.
const route = "/v1/events/{topic}"

// Request headers of the API (the gateway contract of docs/services.md).
const (
	HeaderCorrelationID = "X-Correlation-ID"
	HeaderKey           = "X-Event-Key"
	HeaderID            = "X-Event-ID"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultPublishTimeout = 3 * time.Second
	// MaxHeaderBytes bounds the value of each of the API's request headers
	// (and Content-Type): IDs and keys are identifiers, not payloads.
	MaxHeaderBytes = 256
)

// bodyReadTimeout bounds reading one request body, so a client that
// trickles its body cannot hold a connection for ever.
const bodyReadTimeout = 30 * time.Second

// Publisher publishes one event and returns once the broker acknowledged it;
// *app.Publisher is one.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, opts ...app.PublishOption) (*message.Message, error)
}

// Config configures a Gateway. Zero fields take the documented defaults.
type Config struct {
	// AllowedTopics are the topics the gateway publishes to. Empty (the
	// default): any legal topic name except PoisonTopic.
	AllowedTopics []string
	// PoisonTopic is refused even when listed in AllowedTopics (poisoned
	// messages go back with `eventfx poison replay`). Default
	// config.DefaultPoisonTopic.
	PoisonTopic string
	// MaxBodyBytes bounds a request body (the payload). Default
	// DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// AuthToken, when set, is the bearer token every request must present
	// ("Authorization: Bearer <token>"). Default empty: no authentication.
	// A secret: never logged or echoed.
	AuthToken string
	// PublishTimeout bounds the wait for the broker's acknowledgement; past
	// it the gateway answers 503. Default DefaultPublishTimeout (3s).
	PublishTimeout time.Duration
	// TracerProvider traces each request as a SERVER span (see
	// Gateway). Default: a no-op provider, which records nothing; the
	// caller's W3C trace context still continues on the event.
	TracerProvider trace.TracerProvider
}

// FromConfig is the gateway's part of a service config.
func FromConfig(c config.Config) Config {
	return Config{
		AllowedTopics:  c.Publisher.AllowedTopics,
		PoisonTopic:    c.Poison.Topic,
		MaxBodyBytes:   c.Publisher.MaxBodyBytes,
		PublishTimeout: c.Publisher.PublishTimeout,
		AuthToken:      c.HTTP.AuthToken,
	}
}

func (c *Config) setDefaults() {
	c.AllowedTopics = slices.Clone(c.AllowedTopics)
	c.PoisonTopic = cmp.Or(c.PoisonTopic, config.DefaultPoisonTopic)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, DefaultPublishTimeout)
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
}

// Validate reports every invalid field at once. It expects defaults
// applied (New applies them).
func (c Config) Validate() error {
	var errs []error
	for i, t := range c.AllowedTopics {
		if err := config.ValidTopicName(t); err != nil {
			errs = append(errs, fmt.Errorf("allowed_topics[%d]: %w", i, err))
		}
	}
	if err := config.ValidTopicName(c.PoisonTopic); err != nil {
		errs = append(errs, fmt.Errorf("poison_topic: %w", err))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: must be positive, got %d", c.MaxBodyBytes))
	}
	if c.PublishTimeout < 0 {
		errs = append(errs, fmt.Errorf("publish_timeout: must be positive, got %s", c.PublishTimeout))
	}
	return errors.Join(errs...)
}

// Gateway is the http.Handler of the gateway API. It is safe for concurrent
// use. Every request gets one log line: debug level, or error level when the
// broker did not acknowledge (503). Every request is a SERVER span "POST
// /v1/events/{topic}" that continues the caller's trace (a valid
// traceparent header; W3C: an invalid one is ignored) or starts one, with
// the event's ID and correlation ID as attributes and status Error on a
// 5xx answer. The event carries that span's trace context, so the
// publish's span and everything downstream are its descendants.
type Gateway struct {
	cfg       Config
	allowed   map[string]bool // nil: any topic
	tokenHash [sha256.Size]byte
	pub       Publisher
	logger    *slog.Logger
	m         metrics
	tracer    trace.Tracer
}

// New returns a gateway publishing with pub and registering its metrics on
// reg (see metrics).
func New(cfg Config, pub Publisher, logger *slog.Logger, reg prometheus.Registerer) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	g := &Gateway{cfg: cfg, pub: pub, logger: logger, tokenHash: sha256.Sum256([]byte(cfg.AuthToken)),
		tracer: cfg.TracerProvider.Tracer(tracing.ScopeName)}
	if len(cfg.AllowedTopics) > 0 {
		g.allowed = make(map[string]bool, len(cfg.AllowedTopics))
		for _, t := range cfg.AllowedTopics {
			g.allowed[t] = true
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	g.m = m
	return g, nil
}

// Mount registers the gateway on mux at Pattern, and answers every request
// that no route of mux takes with a JSON error as the gateway's own: 405
// (with Allow: POST) for another method on the gateway's path, else 404.
func (g *Gateway) Mount(mux *http.ServeMux) {
	mux.Handle(Pattern, g)
	mux.HandleFunc("/", unrouted)
}

// unrouted answers a request no route takes.
func unrouted(w http.ResponseWriter, r *http.Request) {
	res := fail(http.StatusNotFound, "no such endpoint: %s %s (the API is POST %s)", r.Method, r.URL.Path, route)
	if strings.HasPrefix(r.URL.Path, "/v1/events/") {
		w.Header().Set("Allow", http.MethodPost)
		res = fail(http.StatusMethodNotAllowed, "method %s not allowed on %s: use POST", r.Method, r.URL.Path)
	}
	writeResponse(w, res)
}

// writeResponse writes res as JSON.
func writeResponse(w http.ResponseWriter, res response) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.status)
	_ = json.NewEncoder(w).Encode(res.body)
}

// response is the outcome of one request.
type response struct {
	status int
	body   any
	// attrs describe the request in its log line (never the token or
	// the payload).
	attrs []slog.Attr
	// err is why the broker did not acknowledge (503 only).
	err error
}

// Accepted is the body of a 202 answer.
type Accepted struct {
	ID            string `json:"id"`
	Topic         string `json:"topic"`
	CorrelationID string `json:"correlation_id"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

func fail(status int, format string, args ...any) response {
	return response{status: status, body: Error{Error: fmt.Sprintf(format, args...)}}
}

// ServeHTTP publishes the request body to the topic of the path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, span := g.tracer.Start(tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)),
		spanName, trace.WithSpanKind(trace.SpanKindServer))
	r = r.WithContext(ctx)
	res := g.handle(w, r)
	endSpan(span, res)
	writeResponse(w, res)

	elapsed := time.Since(start)
	g.m.requests.WithLabelValues(route, strconv.Itoa(res.status)).Inc()
	g.m.duration.WithLabelValues(route).Observe(elapsed.Seconds())

	attrs := append(res.attrs, slog.Int("status", res.status), slog.Duration("duration", elapsed))
	if res.err != nil {
		g.logger.LogAttrs(r.Context(), slog.LevelError, "publish failed", append(attrs, slog.Any("error", res.err))...)
		return
	}
	if e, ok := res.body.(Error); ok {
		attrs = append(attrs, slog.String("reason", e.Error))
	}
	g.logger.LogAttrs(r.Context(), slog.LevelDebug, "gateway request", attrs...)
}

// handle checks the request in the contract's order — authentication
// first, so an unauthenticated caller learns nothing about topics — and
// publishes it.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request) response {
	if g.cfg.AuthToken != "" {
		if res, ok := g.authenticate(w, r); !ok {
			return res
		}
	}

	topic := r.PathValue("topic")
	if err := config.ValidTopicName(topic); err != nil {
		return fail(http.StatusBadRequest, "invalid topic name: %v", err)
	}
	if topic == g.cfg.PoisonTopic {
		return fail(http.StatusForbidden, "topic %q is the poison topic: use `eventfx poison replay` to republish poisoned events", topic)
	}
	if g.allowed != nil && !g.allowed[topic] {
		return fail(http.StatusForbidden, "topic %q is not allowed (publisher.allowed_topics)", topic)
	}
	attrs := []slog.Attr{slog.String("topic", topic)}

	hdr := map[string]string{}
	for _, name := range []string{HeaderID, HeaderCorrelationID, HeaderKey, "Content-Type"} {
		v, err := headerValue(r.Header, name)
		if err != nil {
			res := fail(http.StatusBadRequest, "header %s: %v", name, err)
			res.attrs = attrs
			return res
		}
		hdr[name] = v
	}
	id := cmp.Or(hdr[HeaderID], ids.New())
	cid := cmp.Or(hdr[HeaderCorrelationID], ids.New())
	attrs = append(attrs, slog.String("message_id", id), slog.String("correlation_id", cid))
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(semconv.MessagingDestinationName(topic), semconv.MessagingMessageID(id),
			tracing.AttrCorrelationID.String(cid))
	}

	body, res, ok := g.readBody(w, r)
	if !ok {
		res.attrs = attrs
		return res
	}
	attrs = append(attrs, slog.Int("bytes", len(body)))

	opts := []app.PublishOption{app.WithID(id), app.WithCorrelationID(cid), app.WithKey(hdr[HeaderKey])}
	if ct := hdr["Content-Type"]; ct != "" {
		opts = append(opts, app.WithHeader(meta.ContentType, ct))
	}
	for name, v := range tracing.Headers(r.Context()) {
		opts = append(opts, app.WithHeader(name, v))
	}

	if err := g.publish(r.Context(), topic, body, opts); err != nil {
		if kafka.TooLarge(err) {
			// The event will never fit: not a 503.
			res := fail(http.StatusRequestEntityTooLarge, "event too large for the broker")
			res.attrs = attrs
			return res
		}
		w.Header().Set("Retry-After", "1")
		res := fail(http.StatusServiceUnavailable, "broker unavailable: the event was not acknowledged; retry with the same %s", HeaderID)
		res.attrs, res.err = attrs, err
		return res
	}
	return response{status: http.StatusAccepted, body: Accepted{ID: id, Topic: topic, CorrelationID: cid}, attrs: attrs}
}

// authenticate checks the bearer token in constant time (comparing hashes,
// so not even the token's length leaks).
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (response, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventfx"`)
		return fail(http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>)"), false
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], g.tokenHash[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventfx", error="invalid_token"`)
		return fail(http.StatusUnauthorized, "invalid bearer token"), false
	}
	return response{}, true
}

// readBody reads the payload, bounded by MaxBodyBytes and bodyReadTimeout.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, response, bool) {
	tooLarge := fail(http.StatusRequestEntityTooLarge, "body exceeds publisher.max_body_bytes (%d bytes)", g.cfg.MaxBodyBytes)
	if r.ContentLength > g.cfg.MaxBodyBytes {
		return nil, tooLarge, false
	}
	// Not every ResponseWriter supports deadlines (httptest's does not).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, tooLarge, false
	}
	if err != nil {
		return nil, fail(http.StatusBadRequest, "read body: %v", err), false
	}
	if len(body) == 0 {
		return nil, fail(http.StatusBadRequest, "empty body: the body is the event's payload"), false
	}
	return body, response{}, true
}

// publish waits for the broker's acknowledgement up to PublishTimeout or
// until the client goes away. The publish itself may not honour ctx (a
// Sarama send does not), so it runs aside and, after a timeout, finishes in
// the background: a 503 means "not known to be written", and a client that
// retries with the same X-Event-ID lets consumers deduplicate.
func (g *Gateway) publish(ctx context.Context, topic string, body []byte, opts []app.PublishOption) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.PublishTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := g.pub.Publish(ctx, topic, body, opts...)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done: // both ready: the acknowledgement wins
			return err
		default:
			return fmt.Errorf("publish to %s: no acknowledgement: %w", topic, ctx.Err())
		}
	}
}

// headerValue returns the single value of an optional header ("" when
// absent), checked: one value, at most MaxHeaderBytes, UTF-8 without
// control characters (it becomes a Kafka header or key, a log field and
// part of the JSON answer).
func headerValue(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", fmt.Errorf("given %d times, want at most once", len(vs))
	}
	v := vs[0]
	switch {
	case len(v) > MaxHeaderBytes:
		return "", fmt.Errorf("must be at most %d bytes, got %d", MaxHeaderBytes, len(v))
	case !utf8.ValidString(v):
		return "", errors.New("must be valid UTF-8")
	case strings.ContainsFunc(v, unicode.IsControl):
		return "", errors.New("must not contain control characters")
	}
	return v, nil
}

// spanName is the name of a request's span: method and route.
const spanName = http.MethodPost + " " + route

// endSpan ends a request's span with the outcome of the request.
func endSpan(span trace.Span, res response) {
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPRequestMethodPost, semconv.HTTPRoute(route),
			semconv.HTTPResponseStatusCode(res.status))
	}
	// Server spans are errors on 5xx only (OpenTelemetry's HTTP
	// conventions): a 4xx is the caller's mistake.
	err := res.err
	if err == nil && res.status >= 500 {
		err = errors.New(statusText(res))
	}
	tracing.End(span, err)
}

// statusText is what an error answer says.
func statusText(res response) string {
	if e, ok := res.body.(Error); ok {
		return e.Error
	}
	return http.StatusText(res.status)
}
