package app

import (
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/tracing"
	"github.com/eventfx/eventfx/internal/transport"
)

// TracingModule traces the service with OpenTelemetry. It provides:
//
//   - the service's trace.TracerProvider, from observability.tracing:
//     exporter none (the default) records nothing but keeps the W3C trace
//     context flowing; stdout writes each span as JSON on standard output;
//     otlp sends them over OTLP/HTTP to endpoint (plain HTTP when
//     insecure). New traces are sampled at sample_ratio, a caller's
//     decision is kept. At stop it exports what is queued, after
//     everything started later (the router's drain, the HTTP server) has
//     stopped. An sdktrace.SpanExporter in the graph replaces the
//     configured exporter (tests supply a tracetest.InMemoryExporter);
//   - the first observer of every handler's chain (see package router),
//     which makes each attempt a CONSUMER span, child of the message's
//     traceparent.
//
// The gateway (its requests), the Publisher (its publishes) and webhook
// handlers (their calls) use the provider or, for webhooks, the provider of
// the attempt's span. Nothing is set on OpenTelemetry's global provider.
// Place it before HTTPModule, so the provider stops after the server.
var TracingModule = fx.Module("eventfx.tracing",
	fx.Provide(newTracerProvider),
	fx.Provide(fx.Annotate(tracing.Observer, fx.ResultTags(`name:"eventfx.tracing"`))),
	// Built first, so that its stop hook runs last.
	fx.Invoke(func(trace.TracerProvider) {}),
)

// tracingParams are what newTracerProvider needs.
type tracingParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Config
	Logger    *slog.Logger
	// Exporter replaces the configured exporter.
	Exporter sdktrace.SpanExporter `optional:"true"`
}

// newTracerProvider builds the provider and shuts it down at stop.
func newTracerProvider(p tracingParams) (trace.TracerProvider, error) {
	tp, err := tracing.New(tracing.Options{
		Tracing:  p.Config.Observability.Tracing,
		Service:  p.Config.Service,
		Exporter: p.Exporter,
		Logger:   p.Logger,
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StopHook(tp.Shutdown))
	return tp, nil
}

// publisherParams are what newPublisher needs.
type publisherParams struct {
	fx.In
	Config    config.Config
	Transport transport.Transport
	// TracerProvider is TracingModule's, when the app has it.
	TracerProvider trace.TracerProvider `optional:"true"`
}

// newPublisher returns the app's Publisher; it traces with the app's
// TracerProvider when it has one.
func newPublisher(p publisherParams) *Publisher {
	return buildPublisher(p.Config, p.Transport, p.TracerProvider)
}
