package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/bench"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/handwritten"
	"github.com/eventfx/eventfx/internal/loadgen"
	"github.com/eventfx/eventfx/internal/meta"
)

// gatewayRequestTimeout bounds one request: above the gateway's own
// publish timeout (publisher.publish_timeout, default 3s), so that its 503
// arrives rather than a timeout.
const gatewayRequestTimeout = 30 * time.Second

type benchGatewayOpts struct {
	url, topic, token string
	clients           []int
	requests, size    int
	duration          time.Duration
	json              bool
	// compare: run eventfx's gateway and the hand-written one side by side
	// (runCompare), rounds rounds per level.
	compare bool
	rounds  int
}

func newBenchGatewayCmd(g *globals) *cobra.Command {
	o := benchGatewayOpts{url: "http://127.0.0.1:8080", clients: []int{1, 16, 64}, requests: 20000, size: 256, duration: 10 * time.Second, rounds: 10}
	cmd := &cobra.Command{
		Use:   "gateway [--url U | --compare [--rounds N]] [--topic T] [--clients 1,16,64] [--requests N] [--duration D] [--size BYTES] [--token T] [--json]",
		Short: "Load a publisher service's HTTP gateway and measure it",
		Long: `Sends POST <url>/v1/events/<topic> requests with a --size byte body to a running
publisher service (cmd/publisher) from --clients concurrent clients, each
sending its next request as soon as the previous one was answered (a closed
loop: the gateway answers 202 once the broker acknowledged the event). Each
level of --clients runs in turn, until --requests requests or --duration,
whichever comes first (0 lifts that bound). The clients share one HTTP
client keeping a connection per client alive.

--token is sent as "Authorization: Bearer <token>" (default: http.auth_token
from --config/EVENTFX_*; none when empty). Topic: eventfx.bench.gateway
unless --topic is given (a gateway with publisher.allowed_topics must allow
it); the events stay on it (the gateway's Kafka, not --brokers, receives
them).

Prints a config line, then one line per level:
  clients=… requests=… errors=… seconds=… req_per_sec=… p50=… p90=… p99=… max=…
errors counts the requests not answered 2xx, by status (errors_503=…), and
those with no answer (errors_transport=…); the first error of each kind goes
to stderr. Latencies are of the successful requests; req_per_sec counts
every request. --json: one JSON object per level and line instead.
A level in which every request failed ends the run with exit code 1.

--compare measures what eventfx's gateway costs next to one written by
hand, on this machine: it starts, in this process and on loopback, both
cmd/publisher's service (the config's settings, with its features on: the
bearer token, a random one when none is configured, correlation IDs,
metrics, tracing) and a minimal hand-written gateway (net/http and one
franz-go client producing with acks from all in-sync replicas, 202 after
the acknowledgement), both on one broker: --brokers, else kafka.brokers
from the config, else an embedded broker in this process (no TLS or SASL:
the hand-written gateway has none). Each gateway gets a topic of its own
(--topic T: T.eventfx and T.hand-written; default a fresh
eventfx.bench.gateway.<random>). Each level runs in --rounds rounds in
which the two take turns (eventfx first in odd rounds, the hand-written
one in even rounds), each sending --requests/--rounds requests (or for
--duration/--rounds), so both see the same machine. After the config
line it prints per level a line for each gateway and their ratio
(eventfx / hand-written):
  clients=… gateway=eventfx requests=… errors=… seconds=… req_per_sec=… p50=… p90=… p99=… max=…
  clients=… gateway=hand-written requests=… …
  clients=… ratio req_per_sec=… p50=… p99=…
--json: one JSON object per level with "eventfx", "hand_written" (as
without --compare) and "ratio".`,
		Example: `  eventfx bench gateway
  eventfx bench gateway --url http://gateway:8080 --token "$TOKEN" --clients 1,8,32,128 --duration 30s --requests 0
  eventfx bench gateway --compare`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if !cmd.Flags().Changed("token") {
				cfg, err := config.Load(g.configPath)
				if err != nil {
					return err
				}
				o.token = cfg.HTTP.AuthToken
			}
			if o.compare {
				if cmd.Flags().Changed("url") {
					return errors.New("--compare starts its own gateways: drop --url")
				}
				brokers, cfg, err := g.benchBrokers()
				if err != nil {
					return err
				}
				return o.runCompare(cmd.Context(), brokers, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if o.topic == "" {
				o.topic = GatewayBenchTopic
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", o.url, "base URL of the publisher service")
	f.StringVar(&o.topic, "topic", "", "topic of the events (default: "+GatewayBenchTopic+")")
	f.IntSliceVar(&o.clients, "clients", o.clients, "concurrent clients of each level, run in turn")
	f.IntVar(&o.requests, "requests", o.requests, "requests per level (0: no bound)")
	f.DurationVar(&o.duration, "duration", o.duration, "time per level (0: no bound)")
	f.IntVar(&o.size, "size", o.size, "body size in bytes")
	f.StringVar(&o.token, "token", "", "bearer token (default: http.auth_token from the config)")
	f.BoolVar(&o.json, "json", false, "one JSON object per level and line")
	f.BoolVar(&o.compare, "compare", false, "run eventfx's gateway and a hand-written one side by side on one broker")
	f.IntVar(&o.rounds, "rounds", o.rounds, "with --compare: rounds per level in which the two gateways take turns")
	return cmd
}

// GatewayBenchTopic is the default topic of `bench gateway`: one known
// name, so that a gateway's publisher.allowed_topics can allow it (the
// example config does). Nothing consumes it.
const GatewayBenchTopic = "eventfx.bench.gateway"

func (o benchGatewayOpts) validate() error {
	var errs []error
	if u, err := url.Parse(o.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--url must be an absolute http or https URL, got %q", o.url))
	}
	if o.topic != "" {
		if err := config.ValidTopicName(o.topic); err != nil {
			errs = append(errs, fmt.Errorf("--topic: %w", err))
		}
	}
	if len(o.clients) == 0 {
		errs = append(errs, errors.New("--clients must list at least one level"))
	}
	for _, c := range o.clients {
		if c < 1 {
			errs = append(errs, fmt.Errorf("--clients must be at least 1, got %d", c))
		}
	}
	if o.requests < 0 {
		errs = append(errs, fmt.Errorf("--requests must not be negative, got %d", o.requests))
	}
	if o.duration < 0 {
		errs = append(errs, fmt.Errorf("--duration must not be negative, got %s", o.duration))
	}
	if o.requests == 0 && o.duration == 0 {
		errs = append(errs, errors.New("--requests 0 and --duration 0: set at least one bound"))
	}
	if o.size < 1 {
		errs = append(errs, fmt.Errorf("--size must be at least 1 (the gateway refuses empty bodies), got %d", o.size))
	}
	if o.rounds < 1 {
		errs = append(errs, fmt.Errorf("--rounds must be at least 1, got %d", o.rounds))
	}
	if o.compare && o.requests > 0 && o.requests < o.rounds {
		errs = append(errs, fmt.Errorf("--requests %d is fewer than --rounds %d: every round needs a request", o.requests, o.rounds))
	}
	return bench.JoinOneLine(errs)
}

// gatewayLevel is the result of one level (--json: as is).
type gatewayLevel struct {
	URL            string         `json:"url"`
	Topic          string         `json:"topic"`
	Size           int            `json:"size"`
	Clients        int            `json:"clients"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status"`
	Seconds        float64        `json:"seconds"`
	ReqPerSec      float64        `json:"req_per_sec"`
	Latency        bench.Latency  `json:"latency_ms"`
}

func (o benchGatewayOpts) run(ctx context.Context, out, status io.Writer) error {
	endpoint, err := url.JoinPath(o.url, "v1/events", o.topic)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	op, closeIdle := o.op(endpoint)
	defer closeIdle()

	if !o.json {
		l := new(line).word("config").kv("url", endpoint).kv("topic", o.topic).kv("size", strconv.Itoa(o.size)).
			kv("requests", strconv.Itoa(o.requests)).kv("duration", o.duration.String()).kv("auth", strconv.FormatBool(o.token != ""))
		if err := l.writeTo(out); err != nil {
			return err
		}
	}
	for _, clients := range o.clients {
		r, err := loadgen.Run(ctx, loadgen.Config{Clients: clients, Requests: o.requests, Duration: o.duration}, op)
		if err != nil {
			return fmt.Errorf("interrupted at %d clients after %d requests", clients, r.Requests)
		}
		if err := o.report(out, status, r); err != nil {
			return err
		}
		if r.Requests > 0 && r.Errors == r.Requests {
			if n := r.ErrorsByClass[transportClass]; n == r.Requests {
				return fmt.Errorf("no answer from %s: %s", o.url, r.Samples[transportClass])
			}
			return fmt.Errorf("every request failed at %d clients: %s", clients, describeErrors(r))
		}
	}
	return nil
}

// op is a request to endpoint, through an HTTP client keeping a
// connection per client of the largest level alive; closeIdle closes them.
func (o benchGatewayOpts) op(endpoint string) (op loadgen.Op, closeIdle func()) {
	maxClients := slices.Max(o.clients)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxClients
	tr.MaxIdleConnsPerHost = maxClients
	client := &http.Client{Transport: tr, Timeout: gatewayRequestTimeout}
	body := bench.Payload(o.size)
	return func(ctx context.Context) error { return o.post(ctx, client, endpoint, body) }, tr.CloseIdleConnections
}

// transportClass counts requests that got no HTTP answer.
const transportClass = "transport"

// post sends one event and classifies a failure by status.
func (o benchGatewayOpts) post(ctx context.Context, client *http.Client, endpoint string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if o.token != "" {
		req.Header.Set("Authorization", "Bearer "+o.token)
	}
	res, err := client.Do(req)
	if err != nil {
		return loadgen.Fail(transportClass, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 == 2 {
		_, err := io.Copy(io.Discard, res.Body)
		if err != nil {
			return loadgen.Fail(transportClass, fmt.Errorf("read answer: %w", err))
		}
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	_, _ = io.Copy(io.Discard, res.Body)
	var e struct {
		Error string `json:"error"`
	}
	reason := strings.TrimSpace(string(msg))
	if json.Unmarshal(msg, &e) == nil && e.Error != "" {
		reason = e.Error
	}
	return loadgen.Fail(strconv.Itoa(res.StatusCode), fmt.Errorf("%s: %s", res.Status, meta.OneLine(reason)))
}

func (o benchGatewayOpts) report(out, status io.Writer, r loadgen.Result) error {
	lv := o.level(status, "", o.url, o.topic, r)
	if o.json {
		return writeJSON(out, lv)
	}
	return levelLine(r).writeTo(out)
}

// level is the result r of one level on topic of the gateway at url; the
// first error of each kind goes to status, naming the gateway when name
// is set.
func (o benchGatewayOpts) level(status io.Writer, name, url, topic string, r loadgen.Result) gatewayLevel {
	for _, c := range sortedClasses(r) {
		if r.Errors == r.Requests {
			break // run's error says it
		}
		who := ""
		if name != "" {
			who = " " + name
		}
		fmt.Fprintf(status, "eventfx: bench gateway:%s %d clients: %d × %s, first: %s\n", who, r.Clients, r.ErrorsByClass[c], c, r.Samples[c])
	}
	return gatewayLevel{
		URL: url, Topic: topic, Size: o.size, Clients: r.Clients, Requests: r.Requests, Errors: r.Errors,
		ErrorsByStatus: r.ErrorsByClass, Seconds: r.Elapsed.Seconds(), ReqPerSec: r.Rate(),
		Latency: bench.LatencyOf(r.Latency.Summary()),
	}
}

// levelLine is the line of the result r of one level: clients=…, the
// key-value pairs kv, then requests=… errors=… … max=….
func levelLine(r loadgen.Result, kv ...string) *line {
	s := r.Latency.Summary()
	l := new(line).kv("clients", strconv.Itoa(r.Clients))
	for i := 0; i+1 < len(kv); i += 2 {
		l.kv(kv[i], kv[i+1])
	}
	l.kv("requests", strconv.Itoa(r.Requests)).kv("errors", strconv.Itoa(r.Errors))
	for _, c := range sortedClasses(r) {
		l.kv("errors_"+c, strconv.Itoa(r.ErrorsByClass[c]))
	}
	return l.kv("seconds", fmt.Sprintf("%.3f", r.Elapsed.Seconds())).kv("req_per_sec", fmt.Sprintf("%.0f", r.Rate())).
		kv("p50", fmtDur(s.P50)).kv("p90", fmtDur(s.P90)).kv("p99", fmtDur(s.P99)).kv("max", fmtDur(s.Max))
}

func sortedClasses(r loadgen.Result) []string {
	cs := make([]string, 0, len(r.ErrorsByClass))
	for c := range r.ErrorsByClass {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// describeErrors is "401 × 20000 (first: 401 Unauthorized: …)" for each class.
func describeErrors(r loadgen.Result) string {
	var parts []string
	for _, c := range sortedClasses(r) {
		parts = append(parts, fmt.Sprintf("%s × %d (first: %s)", c, r.ErrorsByClass[c], r.Samples[c]))
	}
	return strings.Join(parts, ", ")
}

// Names of the two gateways of --compare, as the output spells them.
const (
	compareEventfx     = "eventfx"
	compareHandWritten = "hand-written"
)

// compareLevel is one level of --compare --json.
type compareLevel struct {
	Clients     int          `json:"clients"`
	Eventfx     gatewayLevel `json:"eventfx"`
	HandWritten gatewayLevel `json:"hand_written"`
	Ratio       compareRatio `json:"ratio"`
}

// compareRatio is eventfx's figure over the hand-written gateway's.
type compareRatio struct {
	ReqPerSec float64 `json:"req_per_sec"`
	P50       float64 `json:"p50"`
	P99       float64 `json:"p99"`
}

// compareTarget is one gateway of --compare: where it listens, its
// requests, and what the rounds of the current level measured.
type compareTarget struct {
	name, url, topic string
	op               loadgen.Op
	result           loadgen.Result
}

// runCompare is --compare: eventfx's gateway (the config cfg, on brokers)
// and the hand-written one started here, measured in turns.
func (o benchGatewayOpts) runCompare(ctx context.Context, brokers []string, cfg config.Config, out, status io.Writer) error {
	if cfg.Kafka.TLS.Enabled || cfg.Kafka.SASL.Mechanism != "" {
		return errors.New("--compare needs a cluster without TLS and SASL (kafka.tls, kafka.sasl): the hand-written gateway has neither")
	}
	embedded := len(brokers) == 0
	if embedded {
		b, err := broker.Start(broker.Config{})
		if err != nil {
			return err
		}
		defer b.Close() // after both gateways, deferred below
		brokers = []string{b.Addr()}
	}
	if o.token == "" {
		o.token = bench.RandomSuffix() // the eventfx gateway checks a token, as a deployed one would
	}
	if o.topic == "" {
		o.topic = GatewayBenchTopic + "." + bench.RandomSuffix()
	}

	efxURL, stop, err := startCompareEventfx(ctx, cfg, brokers, o.token)
	if err != nil {
		return err
	}
	defer stop()
	hwURL, stopHW, err := startCompareHandWritten(brokers)
	if err != nil {
		return err
	}
	defer stopHW()
	targets := [2]*compareTarget{
		{name: compareEventfx, url: efxURL, topic: o.topic + "." + compareEventfx},
		{name: compareHandWritten, url: hwURL, topic: o.topic + "." + compareHandWritten},
	}
	for _, t := range targets {
		endpoint, err := url.JoinPath(t.url, "v1/events", t.topic)
		if err != nil {
			return err
		}
		op, closeIdle := o.op(endpoint)
		defer closeIdle()
		t.op = op
		// Create the topic and open the connections before measuring.
		warm, err := loadgen.Run(ctx, loadgen.Config{Clients: slices.Max(o.clients), Requests: 4 * slices.Max(o.clients)}, op)
		if err != nil {
			return fmt.Errorf("interrupted warming up the %s gateway", t.name)
		}
		if warm.Errors > 0 {
			return fmt.Errorf("the %s gateway failed while warming up: %s", t.name, describeErrors(warm))
		}
	}

	if !o.json {
		l := new(line).word("config").kv("mode", "compare").kv("brokers", strings.Join(brokers, ",")).kv("embedded", strconv.FormatBool(embedded)).
			kv("eventfx_topic", targets[0].topic).kv("hand_written_topic", targets[1].topic).kv("size", strconv.Itoa(o.size)).
			kv("requests", strconv.Itoa(o.requests)).kv("duration", o.duration.String()).kv("rounds", strconv.Itoa(o.rounds)).kv("auth", "true")
		if err := l.writeTo(out); err != nil {
			return err
		}
	}
	for _, clients := range o.clients {
		if err := o.compareLevel(ctx, clients, targets); err != nil {
			return err
		}
		if err := o.reportCompare(out, status, targets); err != nil {
			return err
		}
		for _, t := range targets {
			if r := t.result; r.Requests > 0 && r.Errors == r.Requests {
				return fmt.Errorf("every request to the %s gateway failed at %d clients: %s", t.name, clients, describeErrors(r))
			}
		}
	}
	return nil
}

// compareLevel runs one level: o.rounds rounds, in each of which every
// target sends its share of the level's requests (and time), eventfx
// first in odd rounds and last in even ones.
func (o benchGatewayOpts) compareLevel(ctx context.Context, clients int, targets [2]*compareTarget) error {
	for _, t := range targets {
		t.result = loadgen.Result{}
	}
	for round := range o.rounds {
		cfg := loadgen.Config{Clients: clients, Duration: o.duration / time.Duration(o.rounds)}
		if o.requests > 0 {
			cfg.Requests = o.requests / o.rounds
			if round < o.requests%o.rounds {
				cfg.Requests++
			}
		}
		order := []*compareTarget{targets[0], targets[1]}
		if round%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, t := range order {
			r, err := loadgen.Run(ctx, cfg, t.op)
			if err != nil {
				return fmt.Errorf("interrupted at %d clients in round %d (%s gateway) after %d requests", clients, round+1, t.name, r.Requests)
			}
			t.result.Add(r)
		}
	}
	return nil
}

// reportCompare prints one level of --compare.
func (o benchGatewayOpts) reportCompare(out, status io.Writer, targets [2]*compareTarget) error {
	efx, hw := targets[0].result, targets[1].result
	lv := compareLevel{
		Clients:     efx.Clients,
		Eventfx:     o.level(status, targets[0].name, targets[0].url, targets[0].topic, efx),
		HandWritten: o.level(status, targets[1].name, targets[1].url, targets[1].topic, hw),
		Ratio: compareRatio{
			ReqPerSec: ratio(efx.Rate(), hw.Rate()),
			P50:       ratio(float64(efx.Latency.Percentile(50)), float64(hw.Latency.Percentile(50))),
			P99:       ratio(float64(efx.Latency.Percentile(99)), float64(hw.Latency.Percentile(99))),
		},
	}
	if o.json {
		return writeJSON(out, lv)
	}
	for _, t := range targets {
		if err := levelLine(t.result, "gateway", t.name).writeTo(out); err != nil {
			return err
		}
	}
	l := new(line).kv("clients", strconv.Itoa(lv.Clients)).word("ratio").kv("req_per_sec", fmt.Sprintf("%.2f", lv.Ratio.ReqPerSec)).
		kv("p50", fmt.Sprintf("%.2f", lv.Ratio.P50)).kv("p99", fmt.Sprintf("%.2f", lv.Ratio.P99))
	return l.writeTo(out)
}

// ratio is x/y, 0 when y is.
func ratio(x, y float64) float64 {
	if y == 0 {
		return 0
	}
	return x / y
}

// startCompareEventfx starts cmd/publisher's service, configured by cfg,
// on brokers, its HTTP server on a free loopback port checking token; it
// returns the server's URL and a function that stops the service.
func startCompareEventfx(ctx context.Context, cfg config.Config, brokers []string, token string) (string, func(), error) {
	cfg.Service = "eventfx-bench-gateway-" + bench.RandomSuffix()
	cfg.Kafka.Brokers = brokers
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.AuthToken = token
	cfg.Publisher.AllowedTopics = nil // the bench's own topics
	// Warnings and errors only: no start-up lines among the results. Per
	// request the service logs at debug level, written at neither level.
	cfg.Observability.Log.Level = "warn"
	var srv *app.HTTPServer
	a := fx.New(app.Core(cfg), app.KafkaModule, app.PublisherModule, app.HTTPModule, gateway.Module, fx.Populate(&srv), fx.NopLogger)
	if err := a.Err(); err != nil {
		return "", nil, fmt.Errorf("eventfx gateway: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return "", nil, fmt.Errorf("start the eventfx gateway: %w", err)
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Stop(ctx) // the results are printed already
	}
	return "http://" + srv.Addr(), stop, nil
}

// startCompareHandWritten starts the hand-written gateway on brokers, on a
// free loopback port; it returns its URL and a function that stops it.
func startCompareHandWritten(brokers []string) (string, func(), error) {
	g, err := handwritten.New(brokers...)
	if err != nil {
		return "", nil, fmt.Errorf("hand-written gateway: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		return "", nil, fmt.Errorf("hand-written gateway: %w", err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	stop := func() {
		_ = srv.Close()
		g.Close()
	}
	return "http://" + l.Addr().String(), stop, nil
}
