// Package webhook is the Kafka → HTTP webhook relay of cmd/subscriber: a
// handler per route that POSTs each message to the route's URL, signed,
// and classifies the answer as done, transient or permanent.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/schema"
)

// Headers of a webhook delivery (the relay's HTTP contract, docs/services.md).
const (
	HeaderEventID       = "X-Event-ID"
	HeaderCorrelationID = "X-Correlation-ID"
	HeaderEventTopic    = "X-Event-Topic"
	// HeaderEventAttempt is the 1-based attempt number within one delivery;
	// a redelivery after a restart, or a replay, starts again at 1.
	HeaderEventAttempt = "X-Event-Attempt"
	// HeaderSignature is "sha256=<hex HMAC-SHA256 of the body>", sent when
	// the route has a secret.
	HeaderSignature = "X-Eventfx-Signature"
	// HeaderSchemaID is the registry ID of the schema a value was decoded
	// with, on deliveries of routes with decode: json.
	HeaderSchemaID = "X-Schema-ID"

	// Standard Webhooks (https://www.standardwebhooks.com): webhook-id and
	// webhook-timestamp (unix seconds) are always sent, webhook-signature
	// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>") when the route has a
	// secret.
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"

	// StandardWebhooksSecretPrefix marks a secret written as Standard
	// Webhooks does: the key is the base64 text after the prefix.
	StandardWebhooksSecretPrefix = "whsec_"
)

const (
	// defaultContentType is sent when the message has no content_type.
	defaultContentType = "application/octet-stream"
	// maxReasonBytes of a failed response's body go into the error.
	maxReasonBytes = 200
	// maxDrainBytes of a response body are read so the connection can be
	// reused; a longer body closes the connection instead.
	maxDrainBytes = 64 << 10
)

// NewClient returns the HTTP client webhook deliveries should share:
// the default transport's settings (TLS verification, proxy from the
// environment, dial and TLS handshake timeouts) with a larger idle pool per
// host, and redirects not followed. A redirect is answered as the permanent
// failure it is: a moved endpoint is a configuration change, and following
// it silently would send signed payloads somewhere nobody configured.
// Requests are bounded by their context, not by a client timeout.
func NewClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 32
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// New returns the handler of one subscriber route: named route.Name,
// consuming route.Topic, with route.Retry overriding the service's retry
// policy. Each attempt POSTs the payload, untouched, to route.Webhook.URL
// with client (nil: a new NewClient) and these headers:
//
//   - Content-Type: the message's content_type, else application/octet-stream;
//   - X-Event-ID, X-Correlation-ID, X-Event-Topic, X-Event-Attempt (1-based);
//   - webhook-id (the event ID) and webhook-timestamp (unix seconds), always;
//   - with a secret: X-Eventfx-Signature "sha256=<hex HMAC-SHA256 of the
//     body>" and webhook-signature "v1,<base64 HMAC-SHA256 of
//     "<id>.<timestamp>.<body>">". A secret written "whsec_<base64>" is
//     decoded as Standard Webhooks says and the decoded bytes are the key of
//     both signatures; any other secret's bytes are the key as written;
//   - traceparent and tracestate (W3C trace context) of the call's span,
//     when the message or the handler's context has a trace context.
//
// Each attempt is a CLIENT span "POST <route name>", child of the span in
// the message's context (the attempt's span, when the service traces with
// app.TracingModule) or else of the trace context the message carries. It
// is recorded by the TracerProvider of that parent span
// (trace.Span.TracerProvider), so Webhook needs no provider of its own and
// uses no global one; without tracing nothing is recorded and the
// message's traceparent and tracestate are forwarded unchanged. The span
// has the HTTP client attributes (the URL without user info or query),
// eventfx.handler, eventfx.attempt and eventfx.correlation_id, and status
// Error when the attempt fails.
//
// The request is bounded by route.Webhook.Timeout (zero: the config
// default) and by the message's context, so the attempt timeout and
// shutdown cancel it. The outcome of an attempt:
//
//   - 2xx: done;
//   - 408, 429, 5xx, a timeout, a connection error: a transient error,
//     retried with backoff; a Retry-After header (seconds or an HTTP date)
//     becomes a RetryAfter hint;
//   - any other status, 3xx included (redirects are not followed, see
//     NewClient): a Permanent error, "webhook <url> answered 400 Bad
//     Request: <at most 200 bytes of the body, on one line>".
//
// Errors never contain the secret, nor the URL's user info or query, which
// may hold credentials. Response bodies are read (bounded) and closed.
//
// With route.Decode "json", the payload must be in Confluent's Schema
// Registry wire format: it is decoded with the schema its ID names and
// delivered as JSON (Content-Type application/json, the schema ID in
// X-Schema-ID; the signatures are of the JSON body). A value that does not
// decode (not framed, an unknown schema ID, not readable with its schema)
// is a Permanent error naming why; a registry that does not answer is
// transient.
//
// Webhook fails if the URL does not parse, a "whsec_" secret is not
// base64, or the route decodes and no registry was given (WithRegistry).
func New(route config.Route, client *http.Client, opts ...Option) (handlers.Handler, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	// The config's defaults for one route, from the one place they live.
	route.Webhook = config.Config{Subscriber: config.Subscriber{Routes: []config.Route{route}}}.
		WithDefaults().Subscriber.Routes[0].Webhook
	u, err := url.Parse(route.Webhook.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		// The URL is not quoted: it may hold credentials.
		return handlers.Handler{}, fmt.Errorf("route %q: webhook url must be an absolute http or https URL", route.Name)
	}
	var key []byte
	if route.Webhook.Secret != "" {
		key, err = signingKey(route.Webhook.Secret)
		if err != nil {
			return handlers.Handler{}, fmt.Errorf("route %q: webhook secret: %w", route.Name, err)
		}
	}
	if client == nil {
		client = NewClient()
	}
	var decoder *schema.Registry
	if route.Decode == config.DecodeJSON {
		if o.registry == nil {
			return handlers.Handler{}, fmt.Errorf("route %q: decode: json needs a schema registry (schema_registry.url)", route.Name)
		}
		decoder = o.registry
	}
	d := &delivery{
		decoder: decoder,
		span:    http.MethodPost + " " + route.Name,
		client:  client,
		url:     route.Webhook.URL,
		shown:   displayURL(u),
		topic:   route.Topic,
		timeout: route.Webhook.Timeout,
		key:     key,
		attrs:   append(clientAttributes(u), attrHandler.String(route.Name)),
	}
	return handlers.Handler{Name: route.Name, Topic: route.Topic, Retry: route.Retry, Consume: route.Consume, MaxInFlight: route.MaxInFlight, Func: d.handle}, nil
}

// Option configures New.
type Option func(*options)

type options struct {
	registry *schema.Registry
}

// WithRegistry gives the routes that decode (decode: json) their registry.
func WithRegistry(r *schema.Registry) Option { return func(o *options) { o.registry = r } }

// signingKey returns the HMAC key of a secret.
func signingKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, StandardWebhooksSecretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(enc)
	}
	if err != nil {
		// The decoder's error is left out: it locates a byte of the secret.
		return nil, fmt.Errorf("text after %q must be base64", StandardWebhooksSecretPrefix)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("text after %q must not be empty", StandardWebhooksSecretPrefix)
	}
	return key, nil
}

// displayURL is u without user info, query and fragment, for errors.
func displayURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery = "", false
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// delivery posts the messages of one route to its webhook.
type delivery struct {
	span    string // name of each attempt's span
	client  *http.Client
	url     string // as configured
	shown   string // displayURL
	topic   string
	timeout time.Duration
	key     []byte               // nil: unsigned
	attrs   []attribute.KeyValue // of every span: method, server, URL, route
	decoder *schema.Registry     // decode: json; nil: the payload untouched
}

func (d *delivery) handle(msg *message.Message) (_ []*message.Message, err error) {
	parent := msg.Context()
	ctx, span := d.startSpan(parent, msg)
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	body, contentType, schemaID, err := d.body(msg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := d.request(ctx, msg, body, contentType)
	if err != nil {
		return nil, handlers.Permanent(err)
	}
	if schemaID != "" {
		req.Header.Set(HeaderSchemaID, schemaID)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, d.transportError(ctx, parent, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		_ = resp.Body.Close()
	}()
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	}
	return nil, d.outcome(resp)
}

// Span attributes and scope, as package internal/tracing names them (which
// handlers cannot import: it imports the router, which imports handlers).
const (
	scopeName         = "github.com/eventfx/eventfx"
	attrCorrelationID = attribute.Key("eventfx.correlation_id")
	attrHandler       = attribute.Key("eventfx.handler")
	attrAttempt       = attribute.Key("eventfx.attempt")
)

// startSpan starts the CLIENT span of one attempt (see Webhook).
func (d *delivery) startSpan(ctx context.Context, msg *message.Message) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(msg.Metadata))
	}
	tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer(scopeName)
	ctx, span := tracer.Start(ctx, d.span, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(d.attrs...)
		span.SetAttributes(
			semconv.MessagingMessageID(msg.UUID),
			attrCorrelationID.String(meta.Correlation(msg)),
			attrAttempt.Int(max(handlers.Attempt(ctx), 1)))
	}
	return ctx, span
}

// clientAttributes are the attributes of every span of a route.
func clientAttributes(u *url.URL) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodPost,
		semconv.URLFull(displayURL(u)),
		semconv.ServerAddress(u.Hostname()),
	}
	port, err := strconv.Atoi(u.Port())
	switch {
	case err == nil:
		attrs = append(attrs, semconv.ServerPort(port))
	case u.Scheme == "https":
		attrs = append(attrs, semconv.ServerPort(443))
	default:
		attrs = append(attrs, semconv.ServerPort(80))
	}
	return attrs
}

// body is what an attempt delivers: the payload and its content type (the
// message's content_type, else application/octet-stream) or, for a route
// that decodes, the decoded JSON and the schema ID.
func (d *delivery) body(msg *message.Message) (body []byte, contentType, schemaID string, err error) {
	if d.decoder == nil {
		contentType = msg.Metadata.Get(meta.ContentType)
		if contentType == "" {
			contentType = defaultContentType
		}
		return msg.Payload, contentType, "", nil
	}
	dec, err := d.decoder.DecodeJSON(msg.Payload)
	if err != nil {
		err = fmt.Errorf("decode: %w", err)
		if errors.Is(err, handlers.ErrCodecUnavailable) {
			return nil, "", "", err
		}
		return nil, "", "", handlers.Permanent(err)
	}
	return dec.JSON, "application/json", strconv.Itoa(dec.ID), nil
}

// request builds the POST of one attempt.
func (d *delivery) request(ctx context.Context, msg *message.Message, body []byte, contentType string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: build request: %w", d.shown, err)
	}
	h := req.Header
	h.Set("User-Agent", "eventfx")
	h.Set("Content-Type", contentType)

	topic := message.SubscribeTopicFromCtx(ctx)
	if topic == "" {
		topic = d.topic
	}
	h.Set(HeaderEventID, msg.UUID)
	if id := meta.Correlation(msg); id != "" {
		h.Set(HeaderCorrelationID, id)
	}
	h.Set(HeaderEventTopic, topic)
	// Outside the retry middleware (no attempt recorded) this is the only
	// attempt: the first.
	h.Set(HeaderEventAttempt, strconv.Itoa(max(handlers.Attempt(ctx), 1)))
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))

	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h.Set(HeaderWebhookID, msg.UUID)
	h.Set(HeaderWebhookTimestamp, ts)
	if d.key != nil {
		mac := hmac.New(sha256.New, d.key)
		mac.Write(body)
		h.Set(HeaderSignature, "sha256="+hex.EncodeToString(mac.Sum(nil)))

		mac = hmac.New(sha256.New, d.key)
		mac.Write([]byte(msg.UUID + "." + ts + "."))
		mac.Write(body)
		h.Set(HeaderWebhookSignature, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return req, nil
}

// transportError classifies a request that got no response: all transient.
func (d *delivery) transportError(ctx, parent context.Context, err error) error {
	switch {
	case parent.Err() != nil:
		// The attempt timed out or the service is stopping: say so with the
		// context's error, which the middleware recognises.
		return fmt.Errorf("webhook %s: %w", d.shown, parent.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("webhook %s did not answer within %s", d.shown, d.timeout)
	}
	// The *url.Error of the client repeats the full URL: keep its cause.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("webhook %s: %w", d.shown, err)
}

// outcome classifies a response.
func (d *delivery) outcome(resp *http.Response) error {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	err := fmt.Errorf("webhook %s answered %s", d.shown, statusLine(code))
	if reason := bodyReason(resp.Body); reason != "" {
		err = fmt.Errorf("%w: %s", err, reason)
	}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500 && code <= 599:
		if delay, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return handlers.RetryAfter(err, delay)
		}
		return err
	default:
		return handlers.Permanent(err)
	}
}

// statusLine is "400 Bad Request", or the code alone if it has no text.
func statusLine(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

// bodyReason returns the start of a body on one line: at most
// maxReasonBytes, whitespace collapsed, control characters and invalid
// UTF-8 removed, "…" when cut.
func bodyReason(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, maxReasonBytes+1))
	cut := len(b) > maxReasonBytes
	if cut {
		b = b[:maxReasonBytes]
	}
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Join(strings.Fields(s), " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if cut && s != "" {
		s += "…"
	}
	return s
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110, section 10.2.3). A date in the past is a zero delay.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Beyond any max_interval anyway; avoid overflowing Duration.
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
