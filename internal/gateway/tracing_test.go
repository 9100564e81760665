package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/meta"
)

const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

func tracedEnv(t *testing.T, pub *fakePublisher) (env, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return newEnv(t, gateway.Config{TracerProvider: tp}, pub), exp
}

func attrOf(kvs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func traceparentOf(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

func TestGatewayRequestIsAServerSpanThatContinuesTheCallersTrace(t *testing.T) {
	e, exp := tracedEnv(t, &fakePublisher{})
	rec := e.do(http.MethodPost, "/v1/events/orders", hdr(
		"X-Correlation-ID", "corr-1",
		"X-Event-ID", "evt-1",
		"Traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01",
		"Tracestate", "congo=t61rcWkgMzE",
	), "{}")
	require.Equal(t, http.StatusAccepted, rec.Code, "body: %s", rec.Body)

	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "POST /v1/events/{topic}", s.Name)
	assert.Equal(t, trace.SpanKindServer, s.SpanKind)
	assert.Equal(t, callerTraceID, s.SpanContext.TraceID().String())
	assert.Equal(t, callerSpanID, s.Parent.SpanID().String(), "a child of the caller's span")
	assert.Equal(t, "corr-1", attrOf(s.Attributes, "eventfx.correlation_id"))
	assert.Equal(t, "evt-1", attrOf(s.Attributes, "messaging.message.id"))
	assert.Equal(t, "orders", attrOf(s.Attributes, "messaging.destination.name"))
	assert.Equal(t, "202", attrOf(s.Attributes, "http.response.status_code"))
	assert.Equal(t, codes.Unset, s.Status.Code)

	_, msgs := e.pub.published()
	require.Len(t, msgs, 1)
	assert.Equal(t, traceparentOf(s.SpanContext), msgs[0].Metadata.Get(meta.Traceparent),
		"the event is the request span's child")
	assert.Equal(t, "congo=t61rcWkgMzE", msgs[0].Metadata.Get(meta.Tracestate))
}

func TestGatewayRequestWithoutTraceparentStartsATrace(t *testing.T) {
	e, exp := tracedEnv(t, &fakePublisher{})
	rec := e.do(http.MethodPost, "/v1/events/orders", hdr("Traceparent", "00-zz-not-valid"), "{}")
	require.Equal(t, http.StatusAccepted, rec.Code, "body: %s", rec.Body)

	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	assert.False(t, spans[0].Parent.IsValid(), "an invalid traceparent is ignored (W3C)")
	_, msgs := e.pub.published()
	assert.Equal(t, traceparentOf(spans[0].SpanContext), msgs[0].Metadata.Get(meta.Traceparent))
}

func TestGatewaySpanStatus(t *testing.T) {
	tests := []struct {
		name   string
		pubErr error
		header http.Header
		status int
		code   codes.Code
	}{
		{name: "broker unavailable is an error", pubErr: errors.New("kafka: client has run out of available brokers"), status: http.StatusServiceUnavailable, code: codes.Error},
		{name: "a caller's mistake is not", header: hdr("X-Event-ID", "a\x01b"), status: http.StatusBadRequest, code: codes.Unset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, exp := tracedEnv(t, &fakePublisher{err: tt.pubErr})
			rec := e.do(http.MethodPost, "/v1/events/orders", tt.header, "{}")
			require.Equal(t, tt.status, rec.Code, "body: %s", rec.Body)

			spans := exp.GetSpans()
			require.Len(t, spans, 1)
			assert.Equal(t, tt.code, spans[0].Status.Code, "status %q", spans[0].Status.Description)
		})
	}
}
