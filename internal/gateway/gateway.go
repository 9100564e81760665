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
	"strings"
	"sync/atomic"
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
	// app is pub when it is an *app.Publisher, whose publish honours its
	// context: the gateway then hands it the message directly (see
	// publish).
	app    *app.Publisher
	logger *slog.Logger
	m      *metrics
	tracer trace.Tracer
	// noopTracer: tracer records nothing (a no-op provider, as exporter
	// none gives), so a request's span is only its caller's trace
	// context (see startSpan).
	noopTracer bool
	// deadlines end the requests' publishes (see publish).
	deadlines deadlines
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
	g.app, _ = pub.(*app.Publisher)
	_, g.noopTracer = g.tracer.(noop.Tracer)
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
	writeResponse(w, &res)
}

// The values of the headers of every answer. They are set as they are
// (already canonical names, never modified: net/http only reads them)
// rather than with Header.Set, which canonicalises the name and
// allocates a slice for each.
var (
	valueJSON    = []string{"application/json"}
	valueNoStore = []string{"no-store"}
	valueNosniff = []string{"nosniff"}
)

// writeResponse writes res as JSON: a 202's Accepted (encoded by
// appendAccepted, byte for byte what encoding/json writes), else its Error.
func writeResponse(w http.ResponseWriter, res *response) {
	h := w.Header()
	h["Content-Type"] = valueJSON
	h["Cache-Control"] = valueNoStore
	h["X-Content-Type-Options"] = valueNosniff
	w.WriteHeader(res.status)
	if res.status == http.StatusAccepted {
		a := &res.accepted
		// The body is its three strings and 41 bytes of JSON around them
		// (more only for a string encoding/json escapes).
		_, _ = w.Write(appendAccepted(make([]byte, 0, 64+len(a.ID)+len(a.Topic)+len(a.CorrelationID)), a))
		return
	}
	_ = json.NewEncoder(w).Encode(Error{Error: res.reason})
}

// response is the outcome of one request.
type response struct {
	status int
	// accepted is the body of a 202; reason the error of any other
	// answer.
	accepted Accepted
	reason   string
	// What the request's log line says of it (never the token or the
	// payload), as far as the request got: logged fields of them
	// (logTopic, logIDs, logBytes), in that order.
	logged         int
	topic, id, cid string
	bytes          int
	// err is why the broker did not acknowledge (503 only).
	err error
}

// How far a request's log line describes it (response.logged).
const (
	_        = iota // nothing: an unauthenticated request, a bad topic
	logTopic        // topic
	logIDs          // and message_id, correlation_id
	logBytes        // and bytes
)

// attrs are the attributes of res's log line, before status and duration.
func (res *response) attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 8)
	if res.logged >= logTopic {
		attrs = append(attrs, slog.String("topic", res.topic))
	}
	if res.logged >= logIDs {
		attrs = append(attrs, slog.String("message_id", res.id), slog.String("correlation_id", res.cid))
	}
	if res.logged >= logBytes {
		attrs = append(attrs, slog.Int("bytes", res.bytes))
	}
	return attrs
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
	return response{status: status, reason: fmt.Sprintf(format, args...)}
}

// fail makes res an error answer: status, and the reason of format and
// args.
func (res *response) fail(status int, format string, args ...any) {
	res.status, res.reason = status, fmt.Sprintf(format, args...)
}

// ServeHTTP publishes the request body to the topic of the path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	r, span := g.startSpan(r)
	var res response
	g.handle(w, r, &res)
	endSpan(span, &res)
	writeResponse(w, &res)

	elapsed := time.Since(start)
	g.m.request(res.status, elapsed)

	level, msg := slog.LevelDebug, "gateway request"
	if res.err != nil {
		level, msg = slog.LevelError, "publish failed"
	}
	// The attributes are built only for a line that is written: every
	// request has its debug line, which a service at its default level
	// (info) does not write.
	if !g.logger.Enabled(r.Context(), level) {
		return
	}
	attrs := append(res.attrs(), slog.Int("status", res.status), slog.Duration("duration", elapsed))
	switch {
	case res.err != nil:
		attrs = append(attrs, slog.Any("error", res.err))
	case res.status != http.StatusAccepted:
		attrs = append(attrs, slog.String("reason", res.reason))
	}
	g.logger.LogAttrs(r.Context(), level, msg, attrs...)
}

// startSpan starts the request's SERVER span, child of the caller's trace
// context, and returns the request with the span's context. A no-op tracer
// (exporter none) would return the caller's trace context as the span, or
// a span with no context at all when the caller sent none: then the
// request goes on with the caller's trace context, extracted, as it would
// with that span (nothing is recorded either way, and the trace context
// the event carries is the same), without the span's context and the
// request's copy made for it.
func (g *Gateway) startSpan(r *http.Request) (*http.Request, trace.Span) {
	parent := r.Context()
	if g.noopTracer && len(r.Header["Traceparent"]) == 0 {
		// No trace context to continue (W3C: tracestate alone is
		// ignored), and none to start.
		return r, trace.SpanFromContext(parent)
	}
	ctx := tracing.Propagator.Extract(parent, headerCarrier{propagation.HeaderCarrier(r.Header)})
	if g.noopTracer {
		if ctx != parent {
			r = r.WithContext(ctx)
		}
		return r, trace.SpanFromContext(ctx)
	}
	ctx, span := g.tracer.Start(ctx, spanName, trace.WithSpanKind(trace.SpanKindServer))
	return r.WithContext(ctx), span
}

// headerCarrier is propagation.HeaderCarrier for extracting: the W3C
// propagator asks for "traceparent" and "tracestate", which Header.Get
// turns into their canonical form, a new string each time, before it looks
// them up; headerCarrier looks them up under that form directly. Same
// headers, same values.
type headerCarrier struct{ propagation.HeaderCarrier }

func (c headerCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return first(http.Header(c.HeaderCarrier), "Traceparent")
	case "tracestate":
		return first(http.Header(c.HeaderCarrier), "Tracestate")
	}
	return c.HeaderCarrier.Get(key)
}

// first is h.Get(name) for a name in canonical form: the first value, ""
// when there is none, without canonicalising the name again.
func first(h http.Header, name string) string {
	if vs := h[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// handle checks the request in the contract's order — authentication
// first, so an unauthenticated caller learns nothing about topics — and
// publishes it, writing the outcome in res.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, res *response) {
	if g.cfg.AuthToken != "" {
		if !g.authenticate(w, r, res) {
			return
		}
	}

	topic := r.PathValue("topic")
	if err := config.ValidTopicName(topic); err != nil {
		res.fail(http.StatusBadRequest, "invalid topic name: %v", err)
		return
	}
	if topic == g.cfg.PoisonTopic {
		res.fail(http.StatusForbidden, "topic %q is the poison topic: use `eventfx poison replay` to republish poisoned events", topic)
		return
	}
	if g.allowed != nil && !g.allowed[topic] {
		res.fail(http.StatusForbidden, "topic %q is not allowed (publisher.allowed_topics)", topic)
		return
	}
	res.logged, res.topic = logTopic, topic

	var hdr headers
	for i, name := range headerNames {
		v, err := headerValue(r.Header, headerKeys[i])
		if err != nil {
			res.fail(http.StatusBadRequest, "header %s: %v", name, err)
			return
		}
		hdr[i] = v
	}
	id := cmp.Or(hdr[hID], ids.New())
	cid := cmp.Or(hdr[hCorrelationID], ids.New())
	res.logged, res.id, res.cid = logIDs, id, cid
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(semconv.MessagingDestinationName(topic), semconv.MessagingMessageID(id),
			tracing.AttrCorrelationID.String(cid))
	}

	body, ok := g.readBody(w, r, res)
	if !ok {
		return
	}
	res.logged, res.bytes = logBytes, len(body)

	if err := g.publish(r.Context(), topic, body, id, cid, &hdr); err != nil {
		if kafka.TooLarge(err) {
			// The event will never fit: not a 503.
			res.fail(http.StatusRequestEntityTooLarge, "event too large for the broker")
			return
		}
		w.Header().Set("Retry-After", "1")
		res.fail(http.StatusServiceUnavailable, "broker unavailable: the event was not acknowledged; retry with the same %s", HeaderID)
		res.err = err
		return
	}
	res.status, res.accepted = http.StatusAccepted, Accepted{ID: id, Topic: topic, CorrelationID: cid}
}

// headers are the values of the optional request headers, by index of
// headerNames.
type headers [4]string

// Indexes of headers.
const (
	hID = iota
	hCorrelationID
	hKey
	hContentType
)

// headerNames are the optional request headers, checked in this order, and
// headerKeys their canonical forms (X-Event-Id), their keys in an
// http.Header.
var (
	headerNames = [...]string{hID: HeaderID, hCorrelationID: HeaderCorrelationID, hKey: HeaderKey, hContentType: "Content-Type"}
	headerKeys  = func() (keys [len(headerNames)]string) {
		for i, name := range headerNames {
			keys[i] = http.CanonicalHeaderKey(name)
		}
		return keys
	}()
)

// authenticate checks the bearer token in constant time (comparing hashes,
// so not even the token's length leaks).
// It writes the 401 in res when the token is missing or wrong.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, res *response) bool {
	scheme, token, _ := strings.Cut(first(r.Header, "Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventfx"`)
		res.fail(http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>)")
		return false
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], g.tokenHash[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventfx", error="invalid_token"`)
		res.fail(http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	return true
}

// readBody reads the payload, bounded by MaxBodyBytes and bodyReadTimeout;
// it writes the error answer in res when it cannot.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, res *response) ([]byte, bool) {
	if r.ContentLength > g.cfg.MaxBodyBytes {
		g.tooLarge(res)
		return nil, false
	}
	// Not every ResponseWriter supports deadlines (httptest's does not).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		g.tooLarge(res)
		return nil, false
	}
	if err != nil {
		res.fail(http.StatusBadRequest, "read body: %v", err)
		return nil, false
	}
	if len(body) == 0 {
		res.fail(http.StatusBadRequest, "empty body: the body is the event's payload")
		return nil, false
	}
	return body, true
}

// tooLarge writes the 413 of a body over MaxBodyBytes in res.
func (g *Gateway) tooLarge(res *response) {
	res.fail(http.StatusRequestEntityTooLarge, "body exceeds publisher.max_body_bytes (%d bytes)", g.cfg.MaxBodyBytes)
}

// publish publishes body to topic as the event id, of correlation ID cid,
// with the key, content type and trace context of the request (hdr, the
// span of the request's context req), and waits for the broker's
// acknowledgement up to PublishTimeout (within deadlineStep), whether or
// not the client is still there. A 503 means "not known to be written",
// and a client that retries with the same X-Event-ID lets consumers
// deduplicate.
//
// An *app.Publisher sends aside and returns when its context ends (the
// write may then still land): the gateway gives it the event as the
// message its Publish would have made of the same options (the ID,
// correlation ID, key, content type and trace headers; the ID Publish
// generates first would be replaced by id), through PublishMessages. Any
// other Publisher may not honour its context (a Sarama send does not), so
// it runs aside and, after a timeout, finishes in the background.
func (g *Gateway) publish(req context.Context, topic string, body []byte, id, cid string, hdr *headers) error {
	ctx := g.deadlines.after(g.cfg.PublishTimeout)
	if span := trace.SpanFromContext(req); span.SpanContext().IsValid() {
		ctx = trace.ContextWithSpan(ctx, span) // the publish continues the request's trace
	}
	trace := tracing.Headers(ctx)
	if g.app != nil {
		m := message.NewMessage(id, body)
		m.Metadata.Set(meta.CorrelationID, cid)
		if k := hdr[hKey]; k != "" {
			m.Metadata.Set(meta.Key, k)
		}
		if ct := hdr[hContentType]; ct != "" {
			m.Metadata.Set(meta.ContentType, ct)
		}
		for name, v := range trace {
			m.Metadata.Set(name, v)
		}
		return g.app.PublishMessages(ctx, topic, m)
	}

	opts := []app.PublishOption{app.WithID(id), app.WithCorrelationID(cid), app.WithKey(hdr[hKey])}
	if ct := hdr[hContentType]; ct != "" {
		opts = append(opts, app.WithHeader(meta.ContentType, ct))
	}
	for name, v := range trace {
		opts = append(opts, app.WithHeader(name, v))
	}
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

// deadlineStep is how precise the publish deadline is: the requests whose
// deadlines fall within one step share one context, which ends at the
// step's end, so a request waits up to PublishTimeout and at most
// deadlineStep more, and needs no timer and no context of its own.
const deadlineStep = 5 * time.Millisecond

// deadlines hands out the contexts of publish deadlines. It is safe for
// concurrent use.
type deadlines struct {
	cur atomic.Pointer[deadline]
}

// deadline is a context that ends at at.
type deadline struct {
	at  time.Time
	ctx context.Context
	// cancel is never called: the context ends by itself at at, which
	// releases its timer.
	cancel context.CancelFunc
}

// after returns a context that ends timeout from now, rounded up to the
// next multiple of deadlineStep: the one of the last caller in the same
// step, or a new one.
func (d *deadlines) after(timeout time.Duration) context.Context {
	at := time.Now().Add(timeout).Truncate(deadlineStep).Add(deadlineStep)
	if cur := d.cur.Load(); cur != nil && cur.at.Equal(at) {
		return cur.ctx
	}
	ctx, cancel := context.WithDeadline(context.Background(), at)
	// Callers racing here each get a valid context; the last one stays.
	d.cur.Store(&deadline{at: at, ctx: ctx, cancel: cancel})
	return ctx
}

// headerValue returns the single value of an optional header ("" when
// absent), checked: one value, at most MaxHeaderBytes, UTF-8 without
// control characters (it becomes a Kafka header or key, a log field and
// part of the JSON answer). name must be in canonical form (as every name
// of headerNames is): the values are h[name], what h.Values(name) returns
// after checking the name's every byte to canonicalise it.
func headerValue(h http.Header, name string) (string, error) {
	vs := h[name]
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
func endSpan(span trace.Span, res *response) {
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
func statusText(res *response) string {
	if res.status != http.StatusAccepted {
		return res.reason
	}
	return http.StatusText(res.status)
}
