package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
)

// Check is one readiness condition: nil when ready.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// ChecksGroup is the fx value group of readiness checks.
const ChecksGroup = "eventfx.readiness"

// AsCheck registers a readiness check.
func AsCheck(c Check) fx.Option {
	return fx.Supply(fx.Annotated{Group: ChecksGroup, Target: c})
}

// Ops is the HTTP server of a service: the ops endpoints (/healthz,
// /readyz, /metrics) and whatever else a service mounts on Mux (the gateway
// API, for cmd/publisher). It listens on http.addr.
type Ops struct {
	// Mux routes requests; mount handlers before the app starts.
	Mux *http.ServeMux
	// Registry holds the service's Prometheus metrics (Go and process
	// collectors included): MetricsModule's when the app has it, else its
	// own.
	Registry *prometheus.Registry

	checks []Check
	logger *slog.Logger
	srv    *http.Server
	addrMu sync.Mutex
	addr   string
}

// OpsParams are what NewOps needs.
type OpsParams struct {
	fx.In
	Config config.Config
	Logger *slog.Logger
	Checks []Check `group:"eventfx.readiness"`
	// Registry is served at /metrics; default a new NewRegistry.
	Registry *prometheus.Registry `optional:"true"`
}

// NewRegistry returns a Prometheus registry with the Go and process
// collectors: the registry of a service's metrics (MetricsModule provides
// one).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewOps builds the ops server; Start listens.
func NewOps(p OpsParams) *Ops {
	reg := p.Registry
	if reg == nil {
		reg = NewRegistry()
	}
	o := &Ops{Mux: http.NewServeMux(), Registry: reg, checks: p.Checks, logger: p.Logger}
	o.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	o.Mux.HandleFunc("GET /readyz", o.readyz)
	o.Mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	o.srv = &http.Server{Addr: p.Config.HTTP.Addr, Handler: o.Mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return o
}

// readyz runs every check with a deadline: 200 when all pass, else 503
// naming the failing ones.
func (o *Ops) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	failed := map[string]string{}
	for _, c := range o.checks {
		if err := c.Check(ctx); err != nil {
			failed[c.Name] = err.Error()
		}
	}
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Start listens on http.addr and serves in the background.
func (o *Ops) Start(context.Context) error {
	l, err := net.Listen("tcp", o.srv.Addr)
	if err != nil {
		return fmt.Errorf("http.addr: listen on %s: %w", o.srv.Addr, err)
	}
	o.addrMu.Lock()
	o.addr = l.Addr().String()
	o.addrMu.Unlock()
	o.logger.Info("http listening", "addr", o.addr)
	go func() {
		if err := o.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.logger.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on, once started.
func (o *Ops) Addr() string {
	o.addrMu.Lock()
	defer o.addrMu.Unlock()
	return o.addr
}

// Stop stops accepting requests and waits for those in progress.
func (o *Ops) Stop(ctx context.Context) error { return o.srv.Shutdown(ctx) }

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// HTTPModule serves the ops endpoints on http.addr: /healthz (process
// alive), /readyz (every registered Check passes: the broker answers, the
// router runs), /metrics (Prometheus).
var HTTPModule = fx.Module("eventfx.http",
	fx.Provide(NewOps),
	fx.Invoke(func(lc fx.Lifecycle, o *Ops) { lc.Append(fx.Hook{OnStart: o.Start, OnStop: o.Stop}) }),
)
