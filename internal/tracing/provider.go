// Package tracing is eventfx's OpenTelemetry tracing: the service's
// TracerProvider built from observability.tracing, the W3C trace context on
// Watermill message metadata, the router Observer that traces each handler
// attempt, and producer spans for publishes.
//
// The trace context (header traceparent, and tracestate) is propagated
// whatever the exporter (the wire format of docs/guarantees.md): with exporter none the
// provider records nothing, and a span it starts carries its parent's
// context unchanged, so an incoming traceparent flows through as it came.
//
// Nothing here touches OpenTelemetry's global provider or propagator: the
// provider is passed explicitly, and code without one (a webhook handler)
// uses the provider of the span in its context (trace.Span.TracerProvider).
package tracing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventfx/eventfx/config"
)

// ScopeName is the instrumentation scope of every span eventfx starts.
const ScopeName = "github.com/eventfx/eventfx"

// Options configure New. Zero fields take the documented defaults.
type Options struct {
	// Tracing is the observability.tracing block. Exporter "" means none;
	// SampleRatio 0 means 1 (config.Config.WithDefaults applies the same).
	Tracing config.Tracing
	// Service is the resource's service.name. Default "eventfx".
	Service string
	// Stdout receives the stdout exporter's spans, one JSON object each.
	// Default os.Stdout.
	Stdout io.Writer
	// Exporter, when set, replaces the configured exporter (and makes the
	// provider record whatever Tracing.Exporter says): tests pass a
	// tracetest.InMemoryExporter, a service its own backend's exporter.
	Exporter sdktrace.SpanExporter
	// Logger reports failed exports (a collector that does not answer),
	// instead of OpenTelemetry's global error handler. Default
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	o.Tracing.Exporter = cmp.Or(o.Tracing.Exporter, config.ExporterNone)
	o.Tracing.SampleRatio = cmp.Or(o.Tracing.SampleRatio, 1)
	o.Service = cmp.Or(o.Service, "eventfx")
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every invalid field at once, named by its config path.
// It expects defaults applied (New applies them).
func (o Options) Validate() error {
	var errs []error
	switch o.Tracing.Exporter {
	case config.ExporterNone, config.ExporterStdout:
	case config.ExporterOTLP:
		if o.Tracing.Endpoint == "" && o.Exporter == nil {
			errs = append(errs, errors.New("observability.tracing.endpoint: required when the exporter is otlp"))
		}
	default:
		errs = append(errs, fmt.Errorf("observability.tracing.exporter: must be none, stdout or otlp, got %q", o.Tracing.Exporter))
	}
	if o.Tracing.SampleRatio < 0 || o.Tracing.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("observability.tracing.sample_ratio: must be between 0 and 1, got %v", o.Tracing.SampleRatio))
	}
	return errors.Join(errs...)
}

// Provider is a service's trace.TracerProvider. With an exporter it is the
// OpenTelemetry SDK's: sampler ParentBased(TraceIDRatioBased(SampleRatio)),
// so a caller's sampling decision is kept and SampleRatio applies to new
// traces; spans are exported in batches. Without one (exporter none) it is
// a no-op provider that records nothing but keeps the trace context. It is
// safe for concurrent use. Shutdown flushes and stops it.
type Provider struct {
	trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil: nothing recorded
}

// New returns the provider opts describe. It does no I/O: the OTLP
// exporter connects when it first exports.
func New(opts Options) (*Provider, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("tracing config: %w", err)
	}
	exp := opts.Exporter
	switch {
	case exp != nil:
	case opts.Tracing.Exporter == config.ExporterNone:
		return &Provider{TracerProvider: noop.NewTracerProvider()}, nil
	case opts.Tracing.Exporter == config.ExporterStdout:
		var err error
		if exp, err = stdouttrace.New(stdouttrace.WithWriter(opts.Stdout)); err != nil {
			return nil, fmt.Errorf("stdout trace exporter: %w", err)
		}
	case opts.Tracing.Exporter == config.ExporterOTLP:
		o := []otlptracehttp.Option{otlptracehttp.WithEndpoint(opts.Tracing.Endpoint)}
		if opts.Tracing.Insecure {
			o = append(o, otlptracehttp.WithInsecure())
		}
		var err error
		// New starts the exporter's client, which does no I/O for HTTP.
		if exp, err = otlptracehttp.New(context.Background(), o...); err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
	}
	// Schemaless, so merging never fails on a schema URL mismatch.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", opts.Service)))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(loggingExporter{SpanExporter: exp, logger: opts.Logger}),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.Tracing.SampleRatio))),
	)
	return &Provider{TracerProvider: sdk, sdk: sdk}, nil
}

// Recording reports whether spans are recorded and exported.
func (p *Provider) Recording() bool { return p.sdk != nil }

// ForceFlush exports the spans that ended and are still queued.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}

// Shutdown exports the queued spans and stops the exporter, within ctx.
// Spans that end afterwards are dropped. Idempotent.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

// loggingExporter logs the errors of exporting a batch with the service's
// logger and does not return them, so that they do not go to
// OpenTelemetry's global error handler (and stderr, unformatted). The
// OTLP exporter retries on its own first; a batch it gives up on is lost:
// tracing never holds up message handling.
type loggingExporter struct {
	sdktrace.SpanExporter
	logger *slog.Logger
}

func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.logger.Warn("trace export failed; spans dropped", "spans", len(spans), "error", err)
	}
	return nil
}
