package gateway

import (
	"log/slog"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
)

// Module mounts the gateway on the service's HTTP server (app.HTTPModule),
// publishing with app.PublisherModule's *app.Publisher, registering its
// metrics on the ops registry and tracing its requests with the app's
// trace.TracerProvider (app.TracingModule), if it has one. A bad gateway
// config fails fx.New.
var Module = fx.Module("eventfx.gateway", fx.Invoke(Mount))

// MountParams are what Mount needs.
type MountParams struct {
	fx.In
	Config    config.Config
	Logger    *slog.Logger
	Publisher *app.Publisher
	HTTP      *app.HTTPServer
	Registry  *prometheus.Registry
	// TracerProvider traces requests; without it none are recorded (the
	// caller's trace context still continues on the event).
	TracerProvider trace.TracerProvider `optional:"true"`
}

// Mount builds the gateway from the service config and mounts it on the ops
// server's mux.
func Mount(p MountParams) error {
	cfg := FromConfig(p.Config)
	cfg.TracerProvider = p.TracerProvider
	g, err := New(cfg, p.Publisher, p.Logger, p.Registry)
	if err != nil {
		return err
	}
	g.Mount(p.HTTP.Mux)
	return nil
}
