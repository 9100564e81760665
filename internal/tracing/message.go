package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the W3C trace context propagator (traceparent,
// tracestate): the wire format of docs/guarantees.md. It is stateless.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Extract returns ctx carrying the trace context in md (as a remote
// parent), or ctx unchanged when md has no valid traceparent (W3C: an
// invalid one is ignored).
func Extract(ctx context.Context, md message.Metadata) context.Context {
	return Propagator.Extract(ctx, propagation.MapCarrier(md))
}

// Inject writes the trace context of ctx's span into md, replacing
// traceparent and tracestate; it writes nothing when ctx has no valid span
// context.
func Inject(ctx context.Context, md message.Metadata) {
	Propagator.Inject(ctx, propagation.MapCarrier(md))
}

// Headers returns the trace context of ctx's span as headers (traceparent
// and, when not empty, tracestate); none when ctx has no valid span
// context.
func Headers(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	h := propagation.MapCarrier{}
	Propagator.Inject(ctx, h)
	return h
}
