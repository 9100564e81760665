package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/webhook"
	"github.com/eventfx/eventfx/router"
)

const (
	callerTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID      = "00f067aa0ba902b7"
	callerTraceparent = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

func TestTracingModuleStartsAndStops(t *testing.T) {
	tests := []struct {
		name    string
		tracing config.Tracing
	}{
		{name: "none", tracing: config.Tracing{Exporter: config.ExporterNone}},
		{name: "stdout", tracing: config.Tracing{Exporter: config.ExporterStdout}},
		{name: "otlp", tracing: config.Tracing{Exporter: config.ExporterOTLP, Endpoint: "127.0.0.1:4318", Insecure: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Metrics off: the tracing observer alone.
			cfg := config.Config{Observability: config.Observability{Tracing: tt.tracing, Metrics: config.Metrics{Disabled: true}}}.WithDefaults()
			var tp trace.TracerProvider
			var observers []router.Observer
			a := fxtest.New(t, app.Core(cfg), fx.Populate(&tp),
				fx.Invoke(fx.Annotate(func(o router.Observer) { observers = append(observers, o) }, fx.ParamTags(`name:"eventfx.tracing"`))))
			a.RequireStart().RequireStop()
			assert.NotNil(t, tp)
			require.Len(t, observers, 1)
			hooks := observers[0](router.HandlerInfo{Name: "h", Topic: "t"})
			if tt.tracing.Exporter == config.ExporterNone {
				assert.NotNil(t, hooks.Context, "the trace context is propagated, lazily")
				assert.Nil(t, hooks.AttemptStarted, "no span")
			} else {
				assert.NotNil(t, hooks.AttemptStarted, "a span per attempt")
			}
		})
	}
}

// relay is a publisher and subscriber service in one, as the trace
// tests need: the gateway on app.HTTPModule publishes to orders; handler
// "enrich" consumes orders and emits a Payment to payments; route
// "billing-hook" relays payments to a webhook.
type relay struct {
	orders, payments string
	ops              *app.HTTPServer
	hook             chan http.Header
}

func startRelay(t *testing.T, cfg config.Config, extra ...fx.Option) relay {
	t.Helper()
	r := relay{orders: kafkatest.Unique("orders"), payments: kafkatest.Unique("payments"), hook: make(chan http.Header, 10)}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hook <- req.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	wh, err := webhook.New(config.Route{Name: "billing-hook", Topic: r.payments, Webhook: config.Webhook{URL: hook.URL + "/hook"}}, nil)
	require.NoError(t, err)
	enrich := handlers.NewEmitting("enrich", r.orders, r.payments, func(ctx context.Context, o Order) ([]Payment, error) {
		return []Payment{{OrderID: o.ID}}, nil
	})
	cfg.HTTP.Addr = "127.0.0.1:0"
	a := fxtest.New(t, append([]fx.Option{app.Core(cfg), app.KafkaModule, app.PublisherModule,
		app.SubscriberModule, app.HTTPModule, gateway.Module, handlers.Register(enrich, wh), fx.Populate(&r.ops)}, extra...)...)
	a.RequireStart()
	t.Cleanup(a.RequireStop)
	return r
}

// post sends an order to the gateway as a traced caller would.
func (r relay) post(t *testing.T, correlationID string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.ops.Addr()+"/v1/events/"+r.orders, strings.NewReader(`{"id":"o1"}`))
	require.NoError(t, err)
	req.Header.Set("Traceparent", callerTraceparent)
	req.Header.Set("Tracestate", "congo=t61rcWkgMzE")
	req.Header.Set("X-Correlation-ID", correlationID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

// webhookCall waits for the webhook's request.
func (r relay) webhookCall(t *testing.T) http.Header {
	t.Helper()
	select {
	case h := <-r.hook:
		return h
	case <-time.After(waitFor):
		t.Fatalf("the webhook was not called within %s", waitFor)
		return nil
	}
}

// spanTree is the spans of one test, by span ID.
type spanTree map[trace.SpanID]tracetest.SpanStub

func treeOf(spans tracetest.SpanStubs) spanTree {
	tree := spanTree{}
	for _, s := range spans {
		tree[s.SpanContext.SpanID()] = s
	}
	return tree
}

// find returns the one span named name (with eventfx.handler = handler,
// when given).
func (tr spanTree) find(t *testing.T, name, handler string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range tr {
		if s.Name == name && (handler == "" || attr(s, "eventfx.handler") == handler) {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %q (handler %q) in:\n%s", name, handler, tr)
	return found[0]
}

// parent returns s's parent, which must be in the tree.
func (tr spanTree) parent(t *testing.T, s tracetest.SpanStub) tracetest.SpanStub {
	t.Helper()
	p, ok := tr[s.Parent.SpanID()]
	require.True(t, ok, "parent of %q is not in the trace:\n%s", s.Name, tr)
	return p
}

// String renders the tree, roots first, children indented.
func (tr spanTree) String() string {
	var b strings.Builder
	var walk func(parent trace.SpanID, depth int)
	walk = func(parent trace.SpanID, depth int) {
		var children []tracetest.SpanStub
		for _, s := range tr {
			if s.Parent.SpanID() == parent {
				children = append(children, s)
			}
		}
		slices.SortFunc(children, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
		for _, s := range children {
			fmt.Fprintf(&b, "%s%-*s %-8s %s\n", strings.Repeat("  ", depth), 34-2*depth, s.Name,
				strings.ToLower(strings.TrimPrefix(s.SpanKind.String(), "SpanKind")), describe(s))
			walk(s.SpanContext.SpanID(), depth+1)
		}
	}
	roots := map[trace.SpanID]bool{}
	for _, s := range tr {
		if _, ok := tr[s.Parent.SpanID()]; !ok {
			roots[s.Parent.SpanID()] = true
		}
	}
	for r := range roots {
		if r.IsValid() {
			fmt.Fprintf(&b, "(caller span %s)\n", r)
		}
		walk(r, 1)
	}
	return b.String()
}

func describe(s tracetest.SpanStub) string {
	var parts []string
	for _, k := range []attribute.Key{"eventfx.handler", "eventfx.attempt", "eventfx.correlation_id", "messaging.destination.name", "http.response.status_code"} {
		if v := attr(s, k); v != "" {
			parts = append(parts, string(k)+"="+v)
		}
	}
	if s.Status.Code.String() == "Error" {
		parts = append(parts, "status=Error")
	}
	return strings.Join(parts, " ")
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func TestGatewayHandlerEmittedEventAndWebhookCallAreOneTrace(t *testing.T) {
	addr := kafkatest.Broker(t)
	exp := tracetest.NewInMemoryExporter()
	var tp trace.TracerProvider
	r := startRelay(t, kafkatest.Config(addr), fx.Supply(fx.Annotate(exp, fx.As(new(sdktrace.SpanExporter)))), fx.Populate(&tp))

	r.post(t, "corr-trace")
	got := r.webhookCall(t)

	// The webhook answered; its client span and its attempt's span end
	// right after.
	var tree spanTree
	kafkatest.Eventually(t, waitFor, func() bool {
		require.NoError(t, tp.(interface{ ForceFlush(context.Context) error }).ForceFlush(context.Background()))
		tree = treeOf(exp.GetSpans())
		for _, s := range tree {
			if s.Name == "process "+r.payments {
				return true
			}
		}
		return false
	}, func() string { return "the webhook route's attempt span did not end; spans:\n" + tree.String() })
	t.Logf("trace:\n%s", tree)

	server := tree.find(t, "POST /v1/events/{topic}", "")
	send := tree.find(t, "send "+r.orders, "")
	enrich := tree.find(t, "process "+r.orders, "enrich")
	relayed := tree.find(t, "process "+r.payments, "billing-hook")
	call := tree.find(t, "POST billing-hook", "")

	assert.Equal(t, callerSpanID, server.Parent.SpanID().String(), "the gateway continues the caller's trace")
	assert.Equal(t, trace.SpanKindServer, server.SpanKind)
	assert.Equal(t, server.SpanContext.SpanID(), send.Parent.SpanID(), "the publish is a child of the request")
	assert.Equal(t, trace.SpanKindProducer, send.SpanKind)
	assert.Equal(t, send.SpanContext.SpanID(), enrich.Parent.SpanID(), "the handler attempt is a child of the publish")
	assert.Equal(t, trace.SpanKindConsumer, enrich.SpanKind)
	// The emitted event links the relay's attempt to enrich's attempt,
	// through the producer span of its publish where there is one.
	p := tree.parent(t, relayed)
	for p.SpanKind == trace.SpanKindProducer {
		assert.Equal(t, "send "+r.payments, p.Name)
		p = tree.parent(t, p)
	}
	assert.Equal(t, enrich.SpanContext.SpanID(), p.SpanContext.SpanID(), "the emitted event descends from the attempt that emitted it")
	assert.Equal(t, trace.SpanKindConsumer, relayed.SpanKind)
	assert.Equal(t, relayed.SpanContext.SpanID(), call.Parent.SpanID(), "the webhook call is a child of the relay's attempt")
	assert.Equal(t, trace.SpanKindClient, call.SpanKind)
	assert.Equal(t, "00-"+callerTraceID+"-"+call.SpanContext.SpanID().String()+"-01", got.Get("Traceparent"),
		"the webhook gets its call's span as parent")
	assert.Equal(t, "congo=t61rcWkgMzE", got.Get("Tracestate"))

	for _, s := range tree {
		assert.Equal(t, callerTraceID, s.SpanContext.TraceID().String(), "span %q is in the caller's trace", s.Name)
		assert.Equal(t, "corr-trace", attr(s, "eventfx.correlation_id"), "span %q has the correlation ID", s.Name)
	}
	assert.Equal(t, "kafka", attr(enrich, "messaging.system"))
	assert.Equal(t, "kafka", attr(send, "messaging.system"))
	// Where the message was consumed, in today's messaging names.
	for _, k := range []attribute.Key{"messaging.destination.partition.id", "messaging.kafka.offset", "messaging.consumer.group.name", "messaging.operation.name", "messaging.operation.type"} {
		assert.NotEmpty(t, attr(enrich, k), "consumer span attribute %s", k)
	}
}

func TestExporterNonePropagatesTheCallersTraceparentUnchanged(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	require.Equal(t, config.ExporterNone, cfg.Observability.Tracing.Exporter)
	r := startRelay(t, cfg)

	r.post(t, "corr-none")
	got := r.webhookCall(t)

	assert.Equal(t, callerTraceparent, got.Get("Traceparent"), "the webhook")
	assert.Equal(t, "congo=t61rcWkgMzE", got.Get("Tracestate"))
	for _, topic := range []string{r.orders, r.payments} {
		h := kafkatest.Headers(kafkatest.Read(t, addr, topic, 1, waitFor)[0])
		assert.Equal(t, callerTraceparent, h["traceparent"], topic)
		assert.Equal(t, "congo=t61rcWkgMzE", h["tracestate"], topic)
		assert.Equal(t, "corr-none", h["correlation_id"], topic)
	}
}
