package webhook_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/internal/meta"
)

const incomingTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traced returns a recording tracer provider (spans exported as they end)
// and its exporter.
func traced(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// handling returns a handler's context in an attempt traced by tp, as the
// tracing observer sets it up, and the attempt's span.
func handling(tp trace.TracerProvider, attempt int) (context.Context, trace.Span) {
	ctx := meta.WithAttempt(context.Background(), attempt)
	return tp.Tracer("test").Start(ctx, "process orders", trace.WithSpanKind(trace.SpanKindConsumer))
}

func spanAttrs(kvs []attribute.KeyValue) map[attribute.Key]string {
	m := make(map[attribute.Key]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.Emit()
	}
	return m
}

func TestWebhookCallIsAClientSpanThatForwardsItsTraceparent(t *testing.T) {
	tp, exp := traced(t)
	hk := newHook(t, answer(http.StatusNoContent, ""))
	h := relay(t, route(hk.URL+"/hook?token=hidden", ""))
	msg := event("evt-1", "{}")
	msg.Metadata.Set(meta.Traceparent, incomingTraceparent)
	ctx, attempt := handling(tp, 2)
	msg.SetContext(ctx)

	_, err := h.Func(msg)
	require.NoError(t, err)
	attempt.End()

	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	call := spans[0]
	assert.Equal(t, "POST billing-hook", call.Name)
	assert.Equal(t, trace.SpanKindClient, call.SpanKind)
	assert.Equal(t, attempt.SpanContext().SpanID(), call.Parent.SpanID(), "the call is a child of the attempt")
	sc := call.SpanContext
	assert.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", hk.requests()[0].Header.Get("traceparent"),
		"the receiver's parent is the call's span")
	a := spanAttrs(call.Attributes)
	assert.Equal(t, "corr-evt-1", a["eventfx.correlation_id"])
	assert.Equal(t, "billing-hook", a["eventfx.handler"])
	assert.Equal(t, "2", a["eventfx.attempt"])
	assert.Equal(t, "204", a["http.response.status_code"])
	assert.Equal(t, "POST", a["http.request.method"])
	assert.Equal(t, hk.URL+"/hook", a["url.full"], "no query: it may hold a credential")
	assert.Equal(t, codes.Unset, call.Status.Code)
}

func TestFailedWebhookCallSpanHasErrorStatus(t *testing.T) {
	tp, exp := traced(t)
	hk := newHook(t, answer(http.StatusServiceUnavailable, "busy"))
	h := relay(t, route(hk.URL, ""))
	msg := event("evt-1", "{}")
	ctx, attempt := handling(tp, 1)
	msg.SetContext(ctx)

	_, err := h.Func(msg)
	require.Error(t, err)
	attempt.End()

	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	assert.Equal(t, codes.Error, spans[0].Status.Code)
	assert.Equal(t, err.Error(), spans[0].Status.Description)
	assert.Equal(t, "503", spanAttrs(spans[0].Attributes)["http.response.status_code"])
}
