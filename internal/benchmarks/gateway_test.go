package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/handwritten"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/loadgen"
)

// gatewayToken is the bearer token of the benchmarks' gateways.
const gatewayToken = "bench-token"

// gatewayClients are the levels of BenchmarkGateway: concurrent clients,
// each sending its next request when the previous one was answered.
var gatewayClients = []int{1, 16, 64}

// BenchmarkGateway sends b.N POST /v1/events/{topic} requests of 256
// bytes (Content-Type and bearer token set, as `eventfx bench gateway`
// sends them) from 1, 16 and 64 concurrent clients in a closed loop
// (internal/loadgen) to two gateways on the package's embedded broker,
// each answering 202 once the broker acknowledged the event (acks from
// all in-sync replicas):
//
//   - eventfx: cmd/publisher's service (app.Core, KafkaModule,
//     PublisherModule, HTTPModule, gateway.Module) with its features on:
//     the auth token, correlation IDs, metrics, tracing with exporter
//     none (the defaults), and one log line per request at debug level
//     (not written: the benchmarks log at warn);
//   - hand-written: internal/handwritten, net/http and one franz-go
//     client, none of those features.
//
// Each reports requests/s (every request, all answered 202), the p50
// and p99 latency, as the client saw them, and the process's CPU time per
// request (cpu-µs/req: gateway, load generator and broker; it varies less
// between repetitions than the rate). The load generator and the
// broker run in the same process and share the cores with the gateway:
// the ratio of the two is the figure (ratios reports it), run with
// -benchtime 20000x as `eventfx bench gateway` sends 20,000 requests a level.
func BenchmarkGateway(b *testing.B) {
	b.Run("eventfx", func(b *testing.B) {
		cfg := benchConfig(brokerAddr)
		cfg.HTTP.Addr = "127.0.0.1:0"
		cfg.HTTP.AuthToken = gatewayToken
		var srv *app.HTTPServer
		startApp(b, app.Core(cfg), app.KafkaModule, app.PublisherModule, app.HTTPModule, gateway.Module, fx.Populate(&srv))
		runGateway(b, srv.Addr())
	})
	b.Run("hand-written", func(b *testing.B) {
		g, err := handwritten.New(brokerAddr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(g.Close)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		b.Cleanup(func() { _ = srv.Close() })
		runGateway(b, l.Addr().String())
	})
}

// runGateway runs every level of clients against the gateway at addr, on
// a fresh topic that a few requests create first.
func runGateway(b *testing.B, addr string) {
	endpoint := "http://" + addr + "/v1/events/" + kafkatest.Unique("bench-gateway")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	op := func(ctx context.Context) error { return postEvent(ctx, client, endpoint) }
	// Create the topic, open the connections.
	if _, err := load(b, op, gatewayClients[len(gatewayClients)-1], 256); err != nil {
		b.Fatal(err)
	}
	for _, clients := range gatewayClients {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			r, err := load(b, op, clients, b.N)
			cpu = cpuTime() - cpu
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			s := r.Latency.Summary()
			b.ReportMetric(r.Rate(), "req/s")
			b.ReportMetric(float64(s.P50)/1e6, "p50-ms")
			b.ReportMetric(float64(s.P99)/1e6, "p99-ms")
			b.ReportMetric(float64(cpu)/1e3/float64(r.Requests), "cpu-µs/req")
		})
	}
}

// load sends n requests from clients clients and fails on any error.
func load(b *testing.B, op loadgen.Op, clients, n int) (loadgen.Result, error) {
	r, err := loadgen.Run(context.Background(), loadgen.Config{Clients: clients, Requests: n}, op)
	if err != nil {
		return r, err
	}
	if r.Errors > 0 {
		for c, s := range r.Samples {
			return r, fmt.Errorf("%d of %d requests failed, %d × %s, first: %s", r.Errors, r.Requests, r.ErrorsByClass[c], c, s)
		}
	}
	return r, nil
}

// postEvent sends one event as `eventfx bench gateway` does; anything but
// a 202 is an error.
func postEvent(ctx context.Context, client *http.Client, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+gatewayToken)
	res, err := client.Do(req)
	if err != nil {
		return loadgen.Fail("transport", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return loadgen.Fail("transport", err)
	}
	if res.StatusCode != http.StatusAccepted {
		return loadgen.Fail(strconv.Itoa(res.StatusCode), fmt.Errorf("%s: %s", res.Status, body))
	}
	return nil
}
