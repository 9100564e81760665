package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
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

// gatewayRounds is how many rounds each level of BenchmarkGateway splits
// its requests into, the two gateways taking turns.
const gatewayRounds = 10

// BenchmarkGateway sends b.N POST /v1/events/{topic} requests of 256
// bytes (Content-Type and bearer token set, as `eventfx bench gateway`
// sends them) from 1, 16 and 64 concurrent clients in a closed loop
// (internal/loadgen) to each of two gateways on the package's embedded
// broker, each answering 202 once the broker acknowledged the event (acks
// from all in-sync replicas):
//
//   - eventfx: cmd/publisher's service (app.Core, KafkaModule,
//     PublisherModule, HTTPModule, gateway.Module) with its features on:
//     the auth token, correlation IDs, metrics, tracing with exporter
//     none (the defaults), and one log line per request at debug level
//     (not written: the benchmarks log at warn);
//   - hand-written: internal/handwritten, net/http and one franz-go
//     client, none of those features.
//
// Both gateways run side by side for the whole benchmark, each on a topic
// of its own, and each level is one benchmark (Gateway/clients=N) in which
// they take turns: gatewayRounds rounds of b.N/gatewayRounds requests,
// in the order eventfx, hand-written, then hand-written, eventfx, and so
// on, after a garbage collection each. On a shared machine whose load
// changes from one second to the next, both gateways then see the same
// machine: go test -count repeats a benchmark's repetitions one after the
// other, so two benchmarks of their own would measure them a minute or
// more apart.
//
// Each level reports, for each gateway (prefix eventfx- or hand-written-),
// its requests/s (every request, all answered 202), the p50 and p99
// latency as the client saw them, and the process's CPU time per request
// (cpu-µs/req: gateway, load generator and broker; it varies less between
// repetitions than the rate), and the ratios eventfx / hand-written of
// the rates (ratio-req/s) and of the p99 (ratio-p99). The load generator
// and the broker run in the same process and share the cores with the
// gateway: the ratio is the figure, run with -benchtime 20000x as
// `eventfx bench gateway` sends 20,000 requests a level.
func BenchmarkGateway(b *testing.B) {
	cfg := benchConfig(brokerAddr)
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.AuthToken = gatewayToken
	var srv *app.HTTPServer
	startApp(b, app.Core(cfg), app.KafkaModule, app.PublisherModule, app.HTTPModule, gateway.Module, fx.Populate(&srv))
	eventfx := newGatewayTarget(b, "eventfx", srv.Addr())

	g, err := handwritten.New(brokerAddr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	b.Cleanup(func() { _ = hs.Close() })
	handWritten := newGatewayTarget(b, "hand-written", l.Addr().String())

	for _, clients := range gatewayClients {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			b.ReportAllocs()
			runGateways(b, clients, eventfx, handWritten)
		})
	}
}

// gatewayTarget is one gateway of BenchmarkGateway and what its rounds of
// one level measured.
type gatewayTarget struct {
	name string
	op   loadgen.Op
	// Sums over the level's rounds.
	result loadgen.Result
	cpu    int64
}

// newGatewayTarget returns the gateway at addr with a fresh topic, which a
// few requests create first (opening the connections too).
func newGatewayTarget(b *testing.B, name, addr string) *gatewayTarget {
	endpoint := "http://" + addr + "/v1/events/" + kafkatest.Unique("bench-gateway")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	t := &gatewayTarget{name: name, op: func(ctx context.Context) error { return postEvent(ctx, client, endpoint) }}
	if _, err := load(b, t.op, gatewayClients[len(gatewayClients)-1], 256); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return t
}

// runGateways sends b.N requests from clients clients to each of x and y,
// in turns (see BenchmarkGateway), and reports what each measured and the
// ratios of x to y.
func runGateways(b *testing.B, clients int, x, y *gatewayTarget) {
	for _, t := range []*gatewayTarget{x, y} {
		t.result, t.cpu = loadgen.Result{}, 0
	}
	b.ResetTimer()
	for round := range gatewayRounds {
		n := b.N / gatewayRounds
		if round < b.N%gatewayRounds {
			n++
		}
		if n == 0 {
			continue
		}
		order := []*gatewayTarget{x, y}
		if round%2 == 1 {
			order = []*gatewayTarget{y, x}
		}
		for _, t := range order {
			b.StopTimer()
			runtime.GC()
			b.StartTimer()
			cpu := cpuTime()
			r, err := load(b, t.op, clients, n)
			t.cpu += cpuTime() - cpu
			if err != nil {
				b.Fatalf("%s: %v", t.name, err)
			}
			t.result.Add(r)
		}
	}
	b.StopTimer()
	for _, t := range []*gatewayTarget{x, y} {
		s := t.result.Latency.Summary()
		b.ReportMetric(t.result.Rate(), t.name+"-req/s")
		b.ReportMetric(float64(s.P50)/1e6, t.name+"-p50-ms")
		b.ReportMetric(float64(s.P99)/1e6, t.name+"-p99-ms")
		b.ReportMetric(float64(t.cpu)/1e3/float64(t.result.Requests), t.name+"-cpu-µs/req")
	}
	b.ReportMetric(x.result.Rate()/y.result.Rate(), "ratio-req/s")
	b.ReportMetric(float64(x.result.Latency.Percentile(99))/float64(y.result.Latency.Percentile(99)), "ratio-p99")
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
