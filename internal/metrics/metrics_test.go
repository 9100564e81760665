package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/metrics"
	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/router"
)

// testConfig retries twice (three attempts) without waiting.
func testConfig() config.Config {
	return config.Config{Retry: config.Retry{
		MaxRetries: 2, InitialInterval: time.Microsecond, MaxInterval: time.Microsecond,
	}}.WithDefaults()
}

// chain is the handler "billing" on topic "orders" behind eventfx's whole
// middleware chain with the observers, as the router runs it.
func chain(fn message.HandlerFunc, poison message.Publisher, observers ...router.Observer) message.HandlerFunc {
	h := handlers.Handler{Name: "billing", Topic: "orders", Func: fn}
	return routing.Chain(testConfig(), h, "svc.billing", poison, slog.New(slog.DiscardHandler), observers...)(fn)
}

// poisonTopic records what is poisoned, or fails when down.
type poisonTopic struct {
	mu   sync.Mutex
	down bool
	msgs []*message.Message
}

func (p *poisonTopic) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("broker down")
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *poisonTopic) Close() error { return nil }

// gather returns the eventfx_ series of reg as "name{labels}" → value (a
// histogram's count under its name).
func gather(t testing.TB, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "eventfx_") {
			continue
		}
		for _, m := range f.GetMetric() {
			got[f.GetName()+labels(m)] = value(m)
		}
	}
	return got
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	default:
		return m.GetCounter().GetValue()
	}
}

// counts are the message metrics of handler billing on topic orders.
type counts struct {
	received, success, poisoned, failed, interrupted int
	attemptsOK, attemptsErr, retries                 int
}

func (c counts) series() map[string]float64 {
	const hl = `handler="billing",`
	return map[string]float64{
		`eventfx_messages_received_total{` + hl + `topic="orders"}`:                      float64(c.received),
		`eventfx_messages_handled_total{` + hl + `outcome="success",topic="orders"}`:     float64(c.success),
		`eventfx_messages_handled_total{` + hl + `outcome="poisoned",topic="orders"}`:    float64(c.poisoned),
		`eventfx_messages_handled_total{` + hl + `outcome="failed",topic="orders"}`:      float64(c.failed),
		`eventfx_messages_handled_total{` + hl + `outcome="interrupted",topic="orders"}`: float64(c.interrupted),
		`eventfx_handler_attempts_total{` + hl + `outcome="success",topic="orders"}`:     float64(c.attemptsOK),
		`eventfx_handler_attempts_total{` + hl + `outcome="error",topic="orders"}`:       float64(c.attemptsErr),
		`eventfx_retries_total{` + hl + `topic="orders"}`:                                float64(c.retries),
		`eventfx_handler_duration_seconds{` + hl + `topic="orders"}`:                     float64(c.attemptsOK + c.attemptsErr),
		`eventfx_messages_in_flight{` + hl + `topic="orders"}`:                           0,
	}
}

func TestObserverCountsEachOutcome(t *testing.T) {
	errBusy := errors.New("database busy")
	tests := []struct {
		name       string
		fn         func(calls int, cancel context.CancelFunc) error
		poisonDown bool
		want       counts
		wantErr    bool
	}{
		{
			name: "success at once",
			fn:   func(int, context.CancelFunc) error { return nil },
			want: counts{received: 1, success: 1, attemptsOK: 1},
		},
		{
			name: "success on the second attempt",
			fn: func(calls int, _ context.CancelFunc) error {
				if calls == 1 {
					return errBusy
				}
				return nil
			},
			want: counts{received: 1, success: 1, attemptsOK: 1, attemptsErr: 1, retries: 1},
		},
		{
			name: "poisoned after the retries",
			fn:   func(int, context.CancelFunc) error { return errBusy },
			want: counts{received: 1, poisoned: 1, attemptsErr: 3, retries: 2},
		},
		{
			name: "permanent error poisoned at once",
			fn:   func(int, context.CancelFunc) error { return handlers.Permanent(errBusy) },
			want: counts{received: 1, poisoned: 1, attemptsErr: 1},
		},
		{
			name: "panic poisoned after the retries",
			fn:   func(int, context.CancelFunc) error { panic("nil map") },
			want: counts{received: 1, poisoned: 1, attemptsErr: 3, retries: 2},
		},
		{
			name:       "poison topic down",
			fn:         func(int, context.CancelFunc) error { return errBusy },
			poisonDown: true,
			want:       counts{received: 1, failed: 1, attemptsErr: 3, retries: 2},
			wantErr:    true,
		},
		{
			name: "interrupted by shutdown",
			fn: func(_ int, cancel context.CancelFunc) error {
				cancel()
				return context.Canceled
			},
			want:    counts{received: 1, interrupted: 1, attemptsErr: 1},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := metrics.NewMessages(reg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			h := chain(func(*message.Message) ([]*message.Message, error) {
				calls++
				return nil, tt.fn(calls, cancel)
			}, &poisonTopic{down: tt.poisonDown}, metrics.NewObserver(m, nil))
			msg := message.NewMessage("m1", []byte("{}"))
			msg.SetContext(ctx)

			_, err = h(msg)

			assert.Equal(t, tt.wantErr, err != nil, "chain error: %v", err)
			assert.Equal(t, tt.want.series(), gather(t, reg))
		})
	}
}

func TestObserverCountsAMessageInFlightUntilItIsHandled(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewMessages(reg)
	require.NoError(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	h := chain(func(*message.Message) ([]*message.Message, error) {
		close(entered)
		<-release
		return nil, nil
	}, &poisonTopic{}, metrics.NewObserver(m, nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = h(message.NewMessage("m1", nil))
	}()

	<-entered
	inFlight := `eventfx_messages_in_flight{handler="billing",topic="orders"}`
	received := `eventfx_messages_received_total{handler="billing",topic="orders"}`
	got := gather(t, reg)
	assert.Equal(t, 1.0, got[inFlight], "in flight while the handler runs")
	assert.Equal(t, 1.0, got[received])
	close(release)
	<-done
	assert.Equal(t, 0.0, gather(t, reg)[inFlight], "in flight once handled")
}

func TestObserverLeavesTheMessageContextAsItFoundIt(t *testing.T) {
	m, err := metrics.NewMessages(prometheus.NewRegistry())
	require.NoError(t, err)
	h := chain(func(*message.Message) ([]*message.Message, error) { return nil, nil }, &poisonTopic{}, metrics.NewObserver(m, nil))
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	msg := message.NewMessage("m1", nil)
	msg.SetContext(ctx)

	_, err = h(msg)

	require.NoError(t, err)
	assert.Equal(t, ctx, msg.Context())
}

func TestMessagesRegisterOncePerRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := metrics.NewMessages(reg)
	require.NoError(t, err)
	_, err = metrics.NewMessages(reg)
	assert.ErrorContains(t, err, "register message metrics")
}

// The duration histogram has Prometheus's default buckets and its sum in
// seconds, whichever goroutines (and so counter shards) recorded it.
func TestDurationHistogramSumsEveryGoroutinesAttempts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewMessages(reg)
	require.NoError(t, err)
	hooks := metrics.NewObserver(m, nil)(router.HandlerInfo{Name: "billing", Topic: "orders"})
	const goroutines, each = 8, 1000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			msg := message.NewMessage("m", nil)
			for range each {
				hooks.Received(msg)
				hooks.AttemptEnded(msg, 1, time.Duration(g+1)*time.Millisecond, nil) // ≤ 5 ms
				hooks.AttemptEnded(msg, 2, 20*time.Millisecond, errors.New("x"))
				hooks.Delivered(msg, router.Succeeded, 2)
			}
		})
	}
	wg.Wait()

	families, err := reg.Gather()
	require.NoError(t, err)
	var h *dto.Histogram
	for _, f := range families {
		if f.GetName() == "eventfx_handler_duration_seconds" {
			h = f.GetMetric()[0].GetHistogram()
		}
	}
	require.NotNil(t, h)
	n := goroutines * each
	assert.EqualValues(t, 2*n, h.GetSampleCount())
	var upper []float64
	for _, b := range h.GetBucket() {
		upper = append(upper, b.GetUpperBound())
	}
	assert.Equal(t, prometheus.DefBuckets, upper)
	cum := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	assert.EqualValues(t, 5*each, cum[0.005], "1–5 ms")
	assert.EqualValues(t, 8*each, cum[0.01], "6–8 ms")
	assert.EqualValues(t, 2*n, cum[0.025], "and the 20 ms retries")
	// Σ (g+1) ms over the goroutines, times each, plus 20 ms per retry.
	assert.InDelta(t, float64(each)*(36e-3+float64(goroutines)*20e-3), h.GetSampleSum(), 1e-9)

	got := gather(t, reg)
	hl := `{handler="billing",topic="orders"}`
	assert.EqualValues(t, n, got["eventfx_messages_received_total"+hl])
	assert.EqualValues(t, 0, got["eventfx_messages_in_flight"+hl])
	assert.EqualValues(t, n, got["eventfx_retries_total"+hl])
	assert.EqualValues(t, n, got[`eventfx_handler_attempts_total{handler="billing",outcome="error",topic="orders"}`])
	assert.EqualValues(t, n, got[`eventfx_handler_attempts_total{handler="billing",outcome="success",topic="orders"}`])
}
