package meta_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventfx/eventfx/internal/meta"
)

const incomingTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// handling returns a handler's context in an attempt traced by a new
// tracer provider, and the attempt's span.
func handling(t *testing.T) (context.Context, trace.Span) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx := meta.WithAttempt(context.Background(), 1)
	return tp.Tracer("test").Start(ctx, "process orders", trace.WithSpanKind(trace.SpanKindConsumer))
}

func event(id, payload string) *message.Message {
	msg := message.NewMessage(id, []byte(payload))
	msg.Metadata.Set(meta.CorrelationID, "corr-"+id)
	return msg
}

func TestInheritTakesTheTraceContextOfTheContextsSpan(t *testing.T) {
	in := event("in-1", "{}")
	in.Metadata.Set(meta.Traceparent, incomingTraceparent)
	ctx, span := handling(t)
	out := message.NewMessage("out-1", nil)
	own := message.NewMessage("out-2", nil)
	own.Metadata.Set(meta.Traceparent, "00-11111111111111111111111111111111-2222222222222222-01")

	meta.Inherit(meta.WithMessage(ctx, in), out, own)

	sc := span.SpanContext()
	assert.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", out.Metadata.Get(meta.Traceparent),
		"an emitted event is a child of the handler's span")
	assert.Equal(t, "corr-in-1", out.Metadata.Get(meta.CorrelationID))
	assert.Equal(t, "00-11111111111111111111111111111111-2222222222222222-01", own.Metadata.Get(meta.Traceparent),
		"a message's own trace context is kept")
}

func TestInheritWithoutASpanCopiesTheHandledMessagesTraceContext(t *testing.T) {
	in := event("in-1", "{}")
	in.Metadata.Set(meta.Traceparent, incomingTraceparent)
	in.Metadata.Set(meta.Tracestate, "vendor=1")
	out := message.NewMessage("out-1", nil)

	meta.Inherit(meta.WithMessage(context.Background(), in), out)

	assert.Equal(t, incomingTraceparent, out.Metadata.Get(meta.Traceparent))
	assert.Equal(t, "vendor=1", out.Metadata.Get(meta.Tracestate))
}
