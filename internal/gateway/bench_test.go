package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/transport"
)

// discardTransport is a transport whose publisher acknowledges at once.
type discardTransport struct{ transport.Transport }

func (discardTransport) Publisher() transport.Publisher { return discardPublisher{} }

type discardPublisher struct{}

func (discardPublisher) Publish(string, ...*message.Message) error { return nil }
func (discardPublisher) PublishContext(context.Context, string, ...*message.Message) error {
	return nil
}
func (discardPublisher) Close() error { return nil }

// BenchmarkServeHTTP is the gateway's own cost per request, without the
// network and the broker: a 256-byte event with a bearer token and a
// Content-Type, through the *app.Publisher of a service (metrics, tracing
// with exporter none) over a transport that acknowledges at once.
// BenchmarkGateway in internal/benchmarks measures it end to end.
func BenchmarkServeHTTP(b *testing.B) {
	var pub *app.Publisher
	tr := discardTransport{transport.NewMemory(slog.New(slog.DiscardHandler))}
	a := fxtest.New(b, app.Core(config.Config{}), fx.Supply(fx.Annotate(tr, fx.As(new(transport.Transport)))),
		app.PublisherModule, fx.Populate(&pub))
	a.RequireStart()
	b.Cleanup(a.RequireStop)
	g, err := gateway.New(gateway.Config{AuthToken: token}, pub, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Mount(mux)
	body := strings.Repeat("x", 256)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/events/orders", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
