package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/router"
)

// metricsModule is what these tests add to app.Core for metrics.
var metricsModule = fx.Options() // app.Core includes app.MetricsModule

// scrape returns the samples of /metrics, "name{labels}" → value.
func scrape(t *testing.T, ops *app.HTTPServer) map[string]float64 {
	t.Helper()
	code, body := get(t, "http://"+ops.Addr()+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	out := map[string]float64{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// pick returns the samples of got named in want.
func pick(got, want map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k := range want {
		if v, ok := got[k]; ok {
			out[k] = v
		}
	}
	return out
}

// lagOf sums the consumer lag of group on topic over its partitions.
func lagOf(samples map[string]float64, group, topic string) float64 {
	prefix := fmt.Sprintf(`eventfx_consumer_lag{group=%q,partition=`, group)
	suffix := fmt.Sprintf(`,topic=%q}`, topic)
	var n float64
	for k, v := range samples {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			n += v
		}
	}
	return n
}

// families lists the eventfx_ metric families of reg.
func families(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	fs, err := reg.Gather()
	require.NoError(t, err)
	var out []string
	for _, f := range fs {
		if strings.HasPrefix(f.GetName(), "eventfx_") {
			out = append(out, f.GetName())
		}
	}
	sort.Strings(out)
	return out
}

func TestMetricsCountAFlowWithASuccessARetryAndAPoison(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	cfg.HTTP.Addr = "127.0.0.1:0"
	topic := kafkatest.Unique("orders")
	var c calls
	metered := handlers.New("metered", topic, func(ctx context.Context, o Order) error {
		n := c.add(o.ID)
		switch {
		case o.ID == "flaky" && n == 1:
			return errors.New("database busy")
		case o.ID == "bad":
			return errors.New("payment gateway down")
		}
		return nil
	})
	var ops *app.HTTPServer
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, app.HTTPModule, metricsModule,
		handlers.Register(metered), fx.Populate(&ops))
	a.RequireStart()
	defer a.RequireStop()

	kafkatest.Produce(t, addr,
		record(topic, "m-ok", "", `{"id":"ok"}`),
		record(topic, "m-flaky", "", `{"id":"flaky"}`),
		record(topic, "m-bad", "", `{"id":"bad"}`))
	kafkatest.Read(t, addr, cfg.Poison.Topic, 1, waitFor)
	group := routing.ConsumerGroup(cfg, "metered")
	kafkatest.Eventually(t, waitFor, func() bool { return kafkatest.Committed(t, addr, group, topic) == 3 },
		func() string { return "the three messages were not all committed" })

	// max_retries is 3: "bad" is tried 4 times, "flaky" twice, "ok" once.
	require.Equal(t, 3, cfg.Retry.MaxRetries)
	const hl = `handler="metered",`
	tl := fmt.Sprintf(`topic=%q}`, topic)
	pl := fmt.Sprintf(`topic=%q}`, cfg.Poison.Topic)
	want := map[string]float64{
		`eventfx_messages_received_total{` + hl + tl:                           3,
		`eventfx_messages_handled_total{` + hl + `outcome="success",` + tl:     2,
		`eventfx_messages_handled_total{` + hl + `outcome="poisoned",` + tl:    1,
		`eventfx_messages_handled_total{` + hl + `outcome="failed",` + tl:      0,
		`eventfx_messages_handled_total{` + hl + `outcome="interrupted",` + tl: 0,
		`eventfx_handler_attempts_total{` + hl + `outcome="success",` + tl:     2,
		`eventfx_handler_attempts_total{` + hl + `outcome="error",` + tl:       5,
		`eventfx_retries_total{` + hl + tl:                                     4,
		`eventfx_handler_duration_seconds_count{` + hl + tl:                    7,
		`eventfx_messages_in_flight{` + hl + tl:                                0,
		`eventfx_messages_published_total{outcome="published",` + pl:           1,
		`eventfx_messages_published_total{outcome="failed",` + pl:              0,
		`eventfx_publish_duration_seconds_count{` + pl:                         1,
	}
	got := scrape(t, ops)
	assert.Equal(t, want, pick(got, want))
	assert.Equal(t, 0.0, lagOf(got, group, topic), "consumer lag once everything is committed")
}

func TestConsumerLagCountsMessagesTheGroupHasNotCommitted(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Retry.AttemptTimeout = time.Minute
	topic := kafkatest.Unique("orders")
	release := make(chan struct{})
	blocked := handlers.New("blocked", topic, func(ctx context.Context, o Order) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	var ops *app.HTTPServer
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, app.HTTPModule, metricsModule,
		handlers.Register(blocked), fx.Populate(&ops))
	a.RequireStart()
	defer a.RequireStop()
	group := routing.ConsumerGroup(cfg, "blocked")

	assert.Equal(t, 0.0, lagOf(scrape(t, ops), group, topic), "lag before anything is produced")

	const n = 5
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = record(topic, fmt.Sprintf("m%d", i), "", fmt.Sprintf(`{"id":"o%d"}`, i))
		recs[i].Key = []byte(strconv.Itoa(i)) // spread over the partitions
	}
	kafkatest.Produce(t, addr, recs...)
	got := scrape(t, ops)
	assert.Equal(t, float64(n), lagOf(got, group, topic), "lag while the handler is blocked; samples: %v", got)

	close(release)
	kafkatest.Eventually(t, waitFor, func() bool { return lagOf(scrape(t, ops), group, topic) == 0 },
		func() string { return fmt.Sprintf("lag once handled: %v", lagOf(scrape(t, ops), group, topic)) })
}

func TestPublishMetricsCountWhatThePublisherWrites(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	topic := kafkatest.Unique("orders")
	var pub *app.Publisher
	var reg *prometheus.Registry
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, metricsModule, fx.Populate(&pub, &reg))
	a.RequireStart()
	defer a.RequireStop()
	ctx := context.Background()

	_, err := pub.Publish(ctx, topic, []byte("a"))
	require.NoError(t, err)
	_, err = pub.Publish(ctx, topic, []byte("b"))
	require.NoError(t, err)
	_, err = pub.Publish(ctx, topic, make([]byte, 4<<20))
	require.Error(t, err, "a message over the producer's limit")

	tl := fmt.Sprintf(`topic=%q}`, topic)
	want := map[string]float64{
		`eventfx_messages_published_total{outcome="published",` + tl: 2,
		`eventfx_messages_published_total{outcome="failed",` + tl:    1,
		`eventfx_publish_duration_seconds_count{` + tl:               3,
	}
	assert.Equal(t, want, pick(samples(t, reg), want))
}

// samples returns the samples of reg as scrape does.
func samples(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	fs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range fs {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				out[f.GetName()+key] = m.GetGauge().GetValue()
			default:
				out[f.GetName()+key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestMetricsDisabledLeaveOnlyGoAndProcessMetrics(t *testing.T) {
	all := []string{
		"eventfx_handler_attempts_total", "eventfx_handler_duration_seconds",
		"eventfx_messages_handled_total", "eventfx_messages_in_flight",
		"eventfx_messages_published_total", "eventfx_messages_received_total",
		"eventfx_publish_duration_seconds", "eventfx_retries_total",
	}
	tests := []struct {
		name     string
		disabled bool
		want     []string
	}{
		{"enabled", false, all},
		{"disabled", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Config{HTTP: config.HTTP{Addr: "127.0.0.1:0"}}.WithDefaults()
			cfg.Observability.Metrics.Disabled = tt.disabled
			topic := kafkatest.Unique("orders")
			handled := make(chan struct{})
			var pub *app.Publisher
			var ops *app.HTTPServer
			var reg *prometheus.Registry
			a := fxtest.New(t, app.Core(cfg), app.MemoryModule, app.SubscriberModule, app.PublisherModule, app.HTTPModule, metricsModule,
				handlers.Register(handlers.New("noop", topic, func(context.Context, Order) error { close(handled); return nil })),
				fx.Populate(&pub, &ops, &reg))
			a.RequireStart()
			defer a.RequireStop()

			_, err := pub.PublishEvent(context.Background(), topic, Order{ID: "o1"})
			require.NoError(t, err)
			select {
			case <-handled:
			case <-time.After(waitFor):
				t.Fatal("handler not called")
			}

			assert.Equal(t, tt.want, families(t, reg))
			_, body := get(t, "http://"+ops.Addr()+"/metrics")
			assert.Contains(t, body, "go_goroutines")
		})
	}
}

func TestMetricsModuleStartsAndStopsWithEachTransportAndService(t *testing.T) {
	addr := kafkatest.Broker(t)
	noop := handlers.New("noop", kafkatest.Unique("events"), func(context.Context, Order) error { return nil })
	withHTTP := func(c config.Config) config.Config { c.HTTP.Addr = "127.0.0.1:0"; return c }
	tests := []struct {
		name    string
		cfg     config.Config
		modules fx.Option
	}{
		{"no transport", kafkatest.Config(addr), fx.Invoke(func(*prometheus.Registry) {})},
		{"observers without a transport", kafkatest.Config(addr), fx.Invoke(fx.Annotate(func(router.Observer) {}, fx.ParamTags(`name:"eventfx.metrics"`)))},
		{"kafka transport", kafkatest.Config(addr), app.KafkaModule},
		{"memory transport", config.Config{}.WithDefaults(), app.MemoryModule},
		{"kafka subscriber with HTTP", withHTTP(kafkatest.Config(addr)), fx.Options(app.KafkaModule, app.SubscriberModule, app.HTTPModule, handlers.Register(noop))},
		{"memory subscriber without HTTP", config.Config{}.WithDefaults(), fx.Options(app.MemoryModule, app.SubscriberModule, handlers.Register(noop))},
		{"gateway on one registry", withHTTP(kafkatest.Config(addr)), fx.Options(app.KafkaModule, app.PublisherModule, app.HTTPModule, gateway.Module)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fxtest.New(t, app.Core(tt.cfg), metricsModule, tt.modules).RequireStart().RequireStop()
		})
	}
}

func TestMeteredKafkaTransportKeepsItsReadinessProbe(t *testing.T) {
	b, err := broker.Start(broker.Config{})
	require.NoError(t, err)
	defer b.Close()
	cfg := kafkatest.Config(b.Addr())
	cfg.HTTP.Addr = "127.0.0.1:0"
	var ops *app.HTTPServer
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.HTTPModule, metricsModule, fx.Populate(&ops))
	a.RequireStart()
	defer a.RequireStop()
	code, body := get(t, "http://"+ops.Addr()+"/readyz")
	require.Equal(t, http.StatusOK, code, body)

	b.Close()

	kafkatest.Eventually(t, 15*time.Second, func() bool {
		code, _ := get(t, "http://"+ops.Addr()+"/readyz")
		return code == http.StatusServiceUnavailable
	}, func() string { _, body := get(t, "http://"+ops.Addr()+"/readyz"); return "readyz still " + body })
}

// Key-mode handlers report what their subscriber holds: a message that is
// not handled yet holds back the commit of the later ones of its
// partition, which are handled.
func TestKeyModeMetricsShowMessagesHeldBehindAnUnhandledOne(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	cfg.Kafka.Consume = config.ConsumeKey
	topic := kafkatest.Unique("orders")
	release := make(chan struct{})
	var reg *prometheus.Registry
	var handled atomic.Int32
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, metricsModule, fx.Populate(&reg),
		handlers.Register(handlers.New("billing", topic, func(ctx context.Context, o Order) error {
			if o.ID == "stuck" {
				<-release
			}
			handled.Add(1)
			return nil
		})))
	a.RequireStart()
	defer a.RequireStop()

	onePartition(t, addr, ordersBehind(topic, "stuck", 5)...)

	group := `group="` + routing.ConsumerGroup(cfg, "billing") + `"`
	part := `{` + group + `,partition="0",topic="` + topic + `"}`
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return handled.Load() == 5 && samples(t, reg)["eventfx_key_mode_held"+part] == 5
	}, func() string { return fmt.Sprintf("handled %d; %v", handled.Load(), keyMode(samples(t, reg))) })
	s := samples(t, reg)
	assert.Equal(t, 1.0, s["eventfx_key_mode_in_flight{"+group+"}"], "the stuck message")
	assert.Equal(t, 1.0, s["eventfx_key_mode_outstanding{"+group+"}"])
	assert.Equal(t, 0.0, s["eventfx_key_mode_paused"+part], "5 held is far below the pause limit")

	close(release)
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		s := samples(t, reg)
		return s["eventfx_key_mode_held"+part] == 0 && s["eventfx_key_mode_outstanding{"+group+"}"] == 0
	}, func() string { return "still held after the stuck message was handled" })
}

// keyMode picks the key-mode samples.
func keyMode(s map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if strings.HasPrefix(k, "eventfx_key_mode_") {
			out[k] = v
		}
	}
	return out
}
