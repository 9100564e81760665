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

// HTTPServer is the HTTP server of a service: the ops endpoints
// (/healthz, /readyz, /metrics) and whatever else the service mounts on Mux
// (the gateway API, for cmd/publisher). HTTPModule provides it; it listens
// on http.addr.
type HTTPServer struct {
	// Mux routes requests; mount handlers before the app starts.
	Mux *http.ServeMux

	checks []readiness
	logger *slog.Logger
	srv    *http.Server
	addrMu sync.Mutex
	addr   string
}

// httpParams are what newHTTPServer needs.
type httpParams struct {
	fx.In
	Config config.Config
	Logger *slog.Logger
	Checks []readiness `group:"eventfx.readiness"`
	// Registry is served at /metrics (MetricsModule's, which Core has).
	Registry *prometheus.Registry `optional:"true"`
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newHTTPServer builds the server; start listens.
func newHTTPServer(p httpParams) *HTTPServer {
	reg := p.Registry
	if reg == nil {
		reg = newRegistry()
	}
	o := &HTTPServer{Mux: http.NewServeMux(), checks: p.Checks, logger: p.Logger}
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
func (o *HTTPServer) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	failed := map[string]string{}
	for _, c := range o.checks {
		if err := c.check(ctx); err != nil {
			failed[c.name] = err.Error()
		}
	}
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// start listens on http.addr and serves in the background.
func (o *HTTPServer) start(context.Context) error {
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
func (o *HTTPServer) Addr() string {
	o.addrMu.Lock()
	defer o.addrMu.Unlock()
	return o.addr
}

// stop stops accepting requests and waits for those in progress.
func (o *HTTPServer) stop(ctx context.Context) error { return o.srv.Shutdown(ctx) }

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// HTTPModule serves the ops endpoints on http.addr: /healthz (process
// alive), /readyz (every ReadinessCheck passes: the broker answers, the
// router's consumer groups are joined), /metrics (Prometheus), and provides
// *HTTPServer for a service's own routes.
var HTTPModule = fx.Module("eventfx.http",
	fx.Provide(newHTTPServer),
	fx.Invoke(func(lc fx.Lifecycle, o *HTTPServer) { lc.Append(fx.Hook{OnStart: o.start, OnStop: o.stop}) }),
)
