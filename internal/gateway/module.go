package gateway

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
)

// Module mounts the gateway on the service's HTTP server (app.HTTPModule),
// publishing with app.PublisherModule's *app.Publisher and registering its
// metrics on the ops registry. A bad gateway config fails fx.New.
var Module = fx.Module("eventfx.gateway", fx.Invoke(Mount))

// MountParams are what Mount needs.
type MountParams struct {
	fx.In
	Config    config.Config
	Logger    *slog.Logger
	Publisher *app.Publisher
	Ops       *app.Ops
}

// Mount builds the gateway from the service config and mounts it on the ops
// server's mux.
func Mount(p MountParams) error {
	g, err := New(FromConfig(p.Config), p.Publisher, p.Logger, p.Ops.Registry)
	if err != nil {
		return err
	}
	g.Mount(p.Ops.Mux)
	return nil
}
