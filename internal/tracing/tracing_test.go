package tracing_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/internal/tracing"
	"github.com/eventfx/eventfx/router"
)

const (
	traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tracestate  = "congo=t61rcWkgMzE"
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// recorder is a recording provider over an in-memory exporter.
type recorder struct {
	*tracing.Provider
	exp *tracetest.InMemoryExporter
}

func newRecorder(t testing.TB) recorder {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp, err := tracing.New(tracing.Options{Service: "test", Exporter: exp})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return recorder{Provider: tp, exp: exp}
}

// spans returns the spans that ended, flushed.
func (r recorder) spans(t testing.TB) tracetest.SpanStubs {
	t.Helper()
	require.NoError(t, r.ForceFlush(context.Background()))
	return r.exp.GetSpans()
}

func noneProvider(t testing.TB) *tracing.Provider {
	t.Helper()
	tp, err := tracing.New(tracing.Options{Tracing: config.Tracing{Exporter: config.ExporterNone}})
	require.NoError(t, err)
	return tp
}

// incoming is a message as it arrives from Kafka.
func incoming() *message.Message {
	m := message.NewMessage("m1", []byte(`{}`))
	m.Metadata.Set(meta.CorrelationID, "corr-1")
	m.Metadata.Set(meta.Traceparent, traceparent)
	m.Metadata.Set(meta.Tracestate, tracestate)
	return m
}

// emitter is a handler that emits one event and records its context.
type emitter struct {
	mu   sync.Mutex
	ctxs []context.Context
	err  []error // returned by successive calls
}

func (e *emitter) handle(msg *message.Message) ([]*message.Message, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ctxs = append(e.ctxs, msg.Context())
	if n := len(e.ctxs); n <= len(e.err) && e.err[n-1] != nil {
		return nil, e.err[n-1]
	}
	out := message.NewMessage("out-1", []byte(`{}`))
	meta.Inherit(meta.WithMessage(msg.Context(), msg), out)
	return []*message.Message{out}, nil
}

// chain is the router's chain of one handler, with the observer's attempt
// hooks (not its producer spans, tested on their own); it returns the
// events the handler emitted, as they were published.
func chain(fn message.HandlerFunc, o router.Observer) message.HandlerFunc {
	cfg := config.Config{
		Service: "svc",
		Retry:   config.Retry{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond},
	}.WithDefaults()
	h := handlers.Handler{Name: "billing", Topic: "orders", PublishTopic: "payments", Func: fn}
	attempts := func(info router.HandlerInfo) router.Hooks {
		hooks := o(info)
		hooks.Publish = nil
		return hooks
	}
	pub := &capture{}
	handle := routing.Chain(cfg, h, "svc.billing", pub, slog.New(slog.DiscardHandler), attempts)(fn)
	return func(msg *message.Message) ([]*message.Message, error) {
		pub.msgs = nil
		_, err := handle(msg)
		return pub.msgs, err
	}
}

// capture is a publisher that keeps what it is given.
type capture struct{ msgs []*message.Message }

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}
func (*capture) Close() error { return nil }

type discard struct{}

func (discard) Publish(string, ...*message.Message) error { return nil }
func (discard) Close() error                              { return nil }

func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestExporterNoneRecordsNothingAndKeepsTheIncomingTraceContext(t *testing.T) {
	tp := noneProvider(t)
	assert.False(t, tp.Recording())
	var e emitter
	produced, err := chain(e.handle, tracing.Observer(tp))(incoming())
	require.NoError(t, err)
	require.Len(t, produced, 1)

	sc := trace.SpanContextFromContext(e.ctxs[0])
	assert.Equal(t, traceID, sc.TraceID().String(), "the handler's context carries the message's trace")
	assert.Equal(t, callerSpan, sc.SpanID().String(), "and no new span")
	assert.Equal(t, traceparent, produced[0].Metadata.Get(meta.Traceparent), "emitted events carry the traceparent unchanged")
	assert.Equal(t, tracestate, produced[0].Metadata.Get(meta.Tracestate))
}

func TestEveryAttemptIsAConsumerSpanChildOfTheMessagesTraceContext(t *testing.T) {
	r := newRecorder(t)
	e := emitter{err: []error{errors.New("database down")}}
	produced, err := chain(e.handle, tracing.Observer(r))(incoming())
	require.NoError(t, err)
	require.Len(t, produced, 1)

	spans := r.spans(t)
	require.Len(t, spans, 2, "one span per attempt")
	for i, s := range spans {
		assert.Equal(t, "process orders", s.Name)
		assert.Equal(t, trace.SpanKindConsumer, s.SpanKind)
		assert.Equal(t, traceID, s.SpanContext.TraceID().String(), "attempt %d continues the message's trace", i+1)
		assert.Equal(t, callerSpan, s.Parent.SpanID().String(), "attempt %d is a child of the message's span", i+1)
		assert.True(t, s.Parent.IsRemote())
		a := attrs(s.Attributes)
		assert.Equal(t, "corr-1", a["eventfx.correlation_id"].AsString())
		assert.Equal(t, "billing", a["eventfx.handler"].AsString())
		assert.Equal(t, int64(i+1), a["eventfx.attempt"].AsInt64())
		assert.Equal(t, "orders", a["messaging.destination.name"].AsString())
		assert.Equal(t, "m1", a["messaging.message.id"].AsString())
		assert.Equal(t, "svc.billing", a["messaging.consumer.group.name"].AsString())
		assert.Equal(t, "process", a["messaging.operation.type"].AsString())
	}
	assert.Equal(t, codes.Error, spans[0].Status.Code)
	assert.Equal(t, "database down", spans[0].Status.Description)
	assert.Equal(t, codes.Unset, spans[1].Status.Code)

	assert.Equal(t, spans[1].SpanContext.SpanID(), trace.SpanContextFromContext(e.ctxs[1]).SpanID(),
		"the handler runs in its attempt's span")
	emitted := produced[0].Metadata.Get(meta.Traceparent)
	assert.Equal(t, "00-"+traceID+"-"+spans[1].SpanContext.SpanID().String()+"-01", emitted,
		"an emitted event is a child of the attempt that emitted it")
	assert.Equal(t, tracestate, produced[0].Metadata.Get(meta.Tracestate))
}

func TestAttemptWithoutTraceContextStartsATrace(t *testing.T) {
	r := newRecorder(t)
	msg := incoming()
	delete(msg.Metadata, meta.Traceparent)
	delete(msg.Metadata, meta.Tracestate)
	_, err := chain((&emitter{}).handle, tracing.Observer(r))(msg)
	require.NoError(t, err)

	spans := r.spans(t)
	require.Len(t, spans, 1)
	assert.False(t, spans[0].Parent.IsValid(), "a root span")
}

func TestAttemptRestoresTheMessageContext(t *testing.T) {
	r := newRecorder(t)
	msg := incoming()
	before := msg.Context()
	_, _ = chain((&emitter{}).handle, tracing.Observer(r))(msg)
	assert.Equal(t, before, msg.Context())
}

func TestProducerSpanIsChildOfTheMessagesContextAndReplacesIt(t *testing.T) {
	r := newRecorder(t)
	p := tracing.Producer{Tracer: r.Tracer(tracing.ScopeName), System: "kafka"}
	msg := incoming()
	msg.Metadata.Set(meta.Key, "customer-7")
	err := p.Send(context.Background(), "payments", []*message.Message{msg}, func() error { return nil })
	require.NoError(t, err)

	spans := r.spans(t)
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "send payments", s.Name)
	assert.Equal(t, trace.SpanKindProducer, s.SpanKind)
	assert.Equal(t, callerSpan, s.Parent.SpanID().String())
	a := attrs(s.Attributes)
	assert.Equal(t, "corr-1", a["eventfx.correlation_id"].AsString())
	assert.Equal(t, "kafka", a["messaging.system"].AsString())
	assert.Equal(t, "payments", a["messaging.destination.name"].AsString())
	assert.Equal(t, "m1", a["messaging.message.id"].AsString())
	assert.Equal(t, "customer-7", a["messaging.kafka.message.key"].AsString())
	assert.Equal(t, "send", a["messaging.operation.name"].AsString())
	assert.Equal(t, "send", a["messaging.operation.type"].AsString())
	assert.Equal(t, "00-"+traceID+"-"+s.SpanContext.SpanID().String()+"-01", msg.Metadata.Get(meta.Traceparent),
		"the consumer's parent is the producer's span")
	assert.Equal(t, tracestate, msg.Metadata.Get(meta.Tracestate))
}

func TestProducerSpanRecordsThePublishError(t *testing.T) {
	r := newRecorder(t)
	pub := tracing.Producer{Tracer: r.Tracer(tracing.ScopeName)}.Publisher(failing{})
	err := pub.Publish("payments", incoming(), incoming())
	require.Error(t, err)

	spans := r.spans(t)
	require.Len(t, spans, 2, "one span per message")
	for _, s := range spans {
		assert.Equal(t, codes.Error, s.Status.Code)
		assert.Equal(t, "broker unavailable", s.Status.Description)
		assert.Equal(t, "*errors.errorString", attrs(s.Attributes)["error.type"].AsString())
	}
}

type failing struct{}

func (failing) Publish(string, ...*message.Message) error { return errors.New("broker unavailable") }
func (failing) Close() error                              { return nil }

func TestProducerWithoutTracerUsesTheProviderOfTheContextsSpan(t *testing.T) {
	r := newRecorder(t)
	ctx, parent := r.Tracer("test").Start(context.Background(), "request")
	msg := message.NewMessage("m2", nil)
	meta.Inherit(ctx, msg)
	require.NoError(t, tracing.Producer{}.Send(ctx, "payments", []*message.Message{msg}, func() error { return nil }))
	parent.End()

	spans := r.spans(t)
	require.Len(t, spans, 2)
	assert.Equal(t, "send payments", spans[0].Name)
	assert.Equal(t, parent.SpanContext().SpanID(), spans[0].Parent.SpanID())
}

func TestProducerWithNoTraceAnywhereLeavesTheMessageAlone(t *testing.T) {
	msg := message.NewMessage("m3", nil)
	require.NoError(t, tracing.Producer{}.Send(context.Background(), "payments", []*message.Message{msg}, func() error { return nil }))
	assert.Empty(t, msg.Metadata)
}

func TestStdoutExporterWritesSpans(t *testing.T) {
	var out bytes.Buffer
	tp, err := tracing.New(tracing.Options{Tracing: config.Tracing{Exporter: config.ExporterStdout}, Service: "billing", Stdout: &out})
	require.NoError(t, err)
	_, err = chain((&emitter{}).handle, tracing.Observer(tp))(incoming())
	require.NoError(t, err)
	require.NoError(t, tp.Shutdown(context.Background()))

	assert.Contains(t, out.String(), `"Name":"process orders"`)
	assert.Contains(t, out.String(), traceID)
	assert.Contains(t, out.String(), `"Value":"billing"`, "the service name is in the resource")
}

func TestOTLPExporterSendsSpansToTheEndpoint(t *testing.T) {
	got := make(chan *http.Request, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	tp, err := tracing.New(tracing.Options{Tracing: config.Tracing{
		Exporter: config.ExporterOTLP, Endpoint: strings.TrimPrefix(collector.URL, "http://"), Insecure: true,
	}})
	require.NoError(t, err)
	_, err = chain((&emitter{}).handle, tracing.Observer(tp))(incoming())
	require.NoError(t, err)
	require.NoError(t, tp.Shutdown(context.Background()))

	select {
	case r := <-got:
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/v1/traces", r.URL.Path)
		assert.Equal(t, "application/x-protobuf", r.Header.Get("Content-Type"))
	default:
		t.Fatal("the collector got no export by the end of Shutdown")
	}
}

func TestFailedExportIsLoggedWithTheServiceLogger(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "no such tenant", http.StatusBadRequest)
	}))
	defer collector.Close()
	var logs bytes.Buffer
	tp, err := tracing.New(tracing.Options{
		Tracing: config.Tracing{Exporter: config.ExporterOTLP, Endpoint: strings.TrimPrefix(collector.URL, "http://"), Insecure: true},
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	require.NoError(t, err)
	_, err = chain((&emitter{}).handle, tracing.Observer(tp))(incoming())
	require.NoError(t, err)

	assert.NoError(t, tp.Shutdown(context.Background()), "a failed export does not fail the shutdown")
	assert.Contains(t, logs.String(), "trace export failed")
	assert.Contains(t, logs.String(), "spans=1")
}

func TestTheCallersSamplingDecisionIsKept(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, err := tracing.New(tracing.Options{Tracing: config.Tracing{SampleRatio: 0.000001}, Exporter: exp})
	require.NoError(t, err)
	tests := []struct {
		name, traceparent string
		recorded          bool
	}{
		{name: "caller sampled", traceparent: traceparent, recorded: true},
		{name: "caller not sampled", traceparent: "00-" + traceID + "-" + callerSpan + "-00", recorded: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := incoming()
			msg.Metadata.Set(meta.Traceparent, tt.traceparent)
			var e emitter
			produced, err := chain(e.handle, tracing.Observer(tp))(msg)
			require.NoError(t, err)
			assert.Equal(t, tt.recorded, trace.SpanContextFromContext(e.ctxs[0]).IsSampled())
			assert.Contains(t, produced[0].Metadata.Get(meta.Traceparent), traceID, "the trace context flows either way")
		})
	}
}

func TestNewReportsEveryBadField(t *testing.T) {
	_, err := tracing.New(tracing.Options{Tracing: config.Tracing{Exporter: "jaeger", SampleRatio: 2}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "observability.tracing.exporter")
	assert.Contains(t, err.Error(), "observability.tracing.sample_ratio")

	_, err = tracing.New(tracing.Options{Tracing: config.Tracing{Exporter: config.ExporterOTLP}})
	assert.ErrorContains(t, err, "observability.tracing.endpoint")
}

func TestShutdownIsIdempotent(t *testing.T) {
	r := newRecorder(t)
	require.NoError(t, r.Shutdown(context.Background()))
	assert.NoError(t, r.Shutdown(context.Background()))
	assert.NoError(t, noneProvider(t).Shutdown(context.Background()))
}

// BenchmarkTracing is the per-message cost of the tracing observer around
// a handler that emits one event: baseline without the observer, off
// (exporter none: propagation only) and on (every span recorded and
// exported by the stdout exporter into io.Discard).
func BenchmarkTracing(b *testing.B) {
	on, err := tracing.New(tracing.Options{Tracing: config.Tracing{Exporter: config.ExporterStdout}, Stdout: io.Discard})
	require.NoError(b, err)
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	handle := func(msg *message.Message) ([]*message.Message, error) {
		out := message.NewMessage("out", nil)
		meta.Inherit(meta.WithMessage(msg.Context(), msg), out)
		return []*message.Message{out}, nil
	}
	nothing := func(router.HandlerInfo) router.Hooks { return router.Hooks{} }
	tests := []struct {
		name string
		fn   message.HandlerFunc
	}{
		{name: "baseline", fn: chain(handle, nothing)},
		{name: "off", fn: chain(handle, tracing.Observer(noneProvider(b)))},
		{name: "on", fn: chain(handle, tracing.Observer(on))},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			msg := incoming()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tt.fn(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
