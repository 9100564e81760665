package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/transport"
)

// publishOnly hides every method of *app.Publisher but Publish: the
// gateway publishes through it as through any Publisher.
type publishOnly struct{ p *app.Publisher }

func (o publishOnly) Publish(ctx context.Context, topic string, payload []byte, opts ...app.PublishOption) (*message.Message, error) {
	return o.p.Publish(ctx, topic, payload, opts...)
}

// TestGatewayWritesTheSameEventThroughAnAppPublisher checks that the
// message the gateway hands an *app.Publisher (PublishMessages) is the one
// Publish makes of the gateway's options, with and without the optional
// headers and a caller's trace context.
func TestGatewayWritesTheSameEventThroughAnAppPublisher(t *testing.T) {
	var (
		pub *app.Publisher
		tr  transport.Transport
	)
	a := fxtest.New(t, app.Core(config.Config{}), app.MemoryModule, app.PublisherModule, fx.Populate(&pub, &tr))
	a.RequireStart()
	defer a.RequireStop()
	sub, err := tr.Subscriber(transport.Spec{ConsumerGroup: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	direct, err := gateway.New(gateway.Config{}, pub, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	viaPublish, err := gateway.New(gateway.Config{}, publishOnly{pub}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)

	for _, tt := range []struct {
		name   string
		header http.Header
	}{
		{"every header", hdr("X-Event-ID", "ev-1", "X-Correlation-ID", "corr-1", "X-Event-Key", "k1",
			"Content-Type", "application/json", "Traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01", "Tracestate", "v=1")},
		{"none", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []*message.Message
			for i, g := range []*gateway.Gateway{direct, viaPublish} {
				topic := []string{"direct", "via-publish"}[i] + "-" + strings.ReplaceAll(tt.name, " ", "-")
				msgs, err := sub.Subscribe(ctx, topic)
				require.NoError(t, err)
				mux := http.NewServeMux()
				g.Mount(mux)
				req := httptest.NewRequest(http.MethodPost, "/v1/events/"+topic, strings.NewReader(`{"n":1}`))
				for k, vs := range tt.header {
					req.Header[k] = vs
				}
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				require.Equal(t, http.StatusAccepted, rec.Code, "body: %s", rec.Body)
				select {
				case m := <-msgs:
					m.Ack()
					got = append(got, m)
				case <-ctx.Done():
					t.Fatal("the event did not arrive")
				}
			}
			d, p := got[0], got[1]
			assert.Equal(t, string(p.Payload), string(d.Payload))
			if tt.header != nil {
				assert.Equal(t, p.UUID, d.UUID)
				assert.Equal(t, p.Metadata, d.Metadata)
				assert.Equal(t, "k1", d.Metadata.Get(meta.Key), "metadata: %v", d.Metadata)
				assert.Equal(t, "application/json", d.Metadata.Get(meta.ContentType))
				assert.Contains(t, d.Metadata.Get(meta.Traceparent), callerTraceID)
				return
			}
			// Generated IDs differ; the headers set are the same.
			assert.NotEmpty(t, d.UUID)
			assert.Equal(t, keys(p.Metadata), keys(d.Metadata))
		})
	}
}

func keys(md message.Metadata) []string {
	var ks []string
	for k := range md {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// stallTransport is a transport whose publisher never acknowledges: a
// publish ends with its context, whose deadline it reports.
type stallTransport struct {
	transport.Transport
	deadlines chan time.Time
}

func (s stallTransport) Publisher() transport.Publisher { return stallPublisher(s) }

type stallPublisher stallTransport

func (stallPublisher) Publish(string, ...*message.Message) error { return nil }
func (s stallPublisher) PublishContext(ctx context.Context, _ string, _ ...*message.Message) error {
	d, _ := ctx.Deadline()
	s.deadlines <- d
	<-ctx.Done()
	return ctx.Err()
}
func (stallPublisher) Close() error { return nil }

// TestGatewayWaitsForTheAcknowledgementUpToThePublishTimeout: through an
// *app.Publisher whose broker never answers, each request waits
// PublishTimeout (rounded up to a few milliseconds, never less), then gets
// the contract's 503.
func TestGatewayWaitsForTheAcknowledgementUpToThePublishTimeout(t *testing.T) {
	const timeout = 40 * time.Millisecond
	tr := stallTransport{Transport: transport.NewMemory(slog.New(slog.DiscardHandler)), deadlines: make(chan time.Time, 4)}
	var pub *app.Publisher
	a := fxtest.New(t, app.Core(config.Config{}), fx.Supply(fx.Annotate(tr, fx.As(new(transport.Transport)))),
		app.PublisherModule, fx.Populate(&pub))
	a.RequireStart()
	defer a.RequireStop()
	g, err := gateway.New(gateway.Config{PublishTimeout: timeout}, pub, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	mux := http.NewServeMux()
	g.Mount(mux)

	for range 3 {
		start := time.Now()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/events/orders", strings.NewReader(`{"n":1}`)))
		end := time.Now()

		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "body: %s", rec.Body)
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
		assert.JSONEq(t, `{"error":"broker unavailable: the event was not acknowledged; retry with the same X-Event-ID"}`, rec.Body.String())
		deadline := <-tr.deadlines
		assert.False(t, deadline.Before(start.Add(timeout)), "deadline %s: before the request's start + %s (%s)", deadline, timeout, start.Add(timeout))
		assert.False(t, deadline.After(end.Add(timeout+10*time.Millisecond)), "deadline %s: more than 10ms past the request's end + %s", deadline, timeout)
		assert.False(t, end.Before(deadline), "answered at %s, before the deadline %s", end, deadline)
	}
}
