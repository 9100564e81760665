package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/bench"
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
}

func newBenchGatewayCmd(g *globals) *cobra.Command {
	o := benchGatewayOpts{url: "http://127.0.0.1:8080", clients: []int{1, 16, 64}, requests: 20000, size: 256, duration: 10 * time.Second}
	cmd := &cobra.Command{
		Use:   "gateway [--url U] [--topic T] [--clients 1,16,64] [--requests N] [--duration D] [--size BYTES] [--token T] [--json]",
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
A level in which every request failed ends the run with exit code 1.`,
		Example: `  eventfx bench gateway
  eventfx bench gateway --url http://gateway:8080 --token "$TOKEN" --clients 1,8,32,128 --duration 30s --requests 0`,
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
	maxClients := slices.Max(o.clients)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxClients
	tr.MaxIdleConnsPerHost = maxClients
	client := &http.Client{Transport: tr, Timeout: gatewayRequestTimeout}
	defer tr.CloseIdleConnections()
	body := bench.Payload(o.size)
	op := func(ctx context.Context) error { return o.post(ctx, client, endpoint, body) }

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
	s := r.Latency.Summary()
	lv := gatewayLevel{
		URL: o.url, Topic: o.topic, Size: o.size, Clients: r.Clients, Requests: r.Requests, Errors: r.Errors,
		ErrorsByStatus: r.ErrorsByClass, Seconds: r.Elapsed.Seconds(), ReqPerSec: r.Rate(),
		Latency: bench.LatencyOf(s),
	}
	for _, c := range sortedClasses(r) {
		if r.Errors == r.Requests {
			break // run's error says it
		}
		fmt.Fprintf(status, "eventfx: bench gateway: %d clients: %d × %s, first: %s\n", r.Clients, r.ErrorsByClass[c], c, r.Samples[c])
	}
	if o.json {
		return writeJSON(out, lv)
	}
	l := new(line).kv("clients", strconv.Itoa(lv.Clients)).kv("requests", strconv.Itoa(lv.Requests)).kv("errors", strconv.Itoa(lv.Errors))
	for _, c := range sortedClasses(r) {
		l.kv("errors_"+c, strconv.Itoa(r.ErrorsByClass[c]))
	}
	l.kv("seconds", fmt.Sprintf("%.3f", lv.Seconds)).kv("req_per_sec", fmt.Sprintf("%.0f", lv.ReqPerSec)).
		kv("p50", fmtDur(s.P50)).kv("p90", fmtDur(s.P90)).kv("p99", fmtDur(s.P99)).kv("max", fmtDur(s.Max))
	return l.writeTo(out)
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
