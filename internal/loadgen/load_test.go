package loadgen_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/loadgen"
)

func TestRunStopsAfterRequests(t *testing.T) {
	tests := []struct {
		clients, requests int
	}{
		{1, 1},
		{1, 100},
		{16, 1000},
		{64, 50}, // fewer requests than clients
	}
	for _, tt := range tests {
		var calls, inFlight, peak atomic.Int64
		op := func(context.Context) error {
			calls.Add(1)
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(100 * time.Microsecond)
			inFlight.Add(-1)
			return nil
		}

		r, err := loadgen.Run(context.Background(), loadgen.Config{Clients: tt.clients, Requests: tt.requests}, op)

		require.NoError(t, err)
		assert.Equal(t, int64(tt.requests), calls.Load(), "%d clients: calls of op", tt.clients)
		assert.Equal(t, tt.requests, r.Requests)
		assert.Equal(t, uint64(tt.requests), r.Latency.Count())
		assert.Zero(t, r.Errors)
		assert.Empty(t, r.ErrorsByClass)
		assert.Equal(t, tt.clients, r.Clients)
		assert.LessOrEqual(t, peak.Load(), int64(tt.clients), "never more requests in flight than clients")
		assert.Positive(t, r.Rate())
	}
}

func TestRunStopsAfterDuration(t *testing.T) {
	op := func(context.Context) error { time.Sleep(time.Millisecond); return nil }

	r, err := loadgen.Run(context.Background(), loadgen.Config{Clients: 4, Duration: 100 * time.Millisecond}, op)

	require.NoError(t, err)
	assert.Positive(t, r.Requests)
	assert.GreaterOrEqual(t, r.Elapsed, 100*time.Millisecond)
}

func TestRunCountsErrorsByClassWithASample(t *testing.T) {
	var n atomic.Int64
	op := func(context.Context) error {
		switch n.Add(1) % 4 {
		case 1:
			return loadgen.Fail("503", errors.New("503 Service Unavailable: broker down"))
		case 2:
			return errors.New("something else")
		}
		return nil
	}

	r, err := loadgen.Run(context.Background(), loadgen.Config{Clients: 1, Requests: 100}, op)

	require.NoError(t, err)
	assert.Equal(t, 100, r.Requests)
	assert.Equal(t, 50, r.Errors)
	assert.Equal(t, map[string]int{"503": 25, loadgen.OtherClass: 25}, r.ErrorsByClass)
	assert.Equal(t, map[string]string{"503": "503 Service Unavailable: broker down", loadgen.OtherClass: "something else"}, r.Samples)
	assert.Equal(t, uint64(50), r.Latency.Count(), "latency of the successful requests")
}

func TestRunInterruptedDoesNotCountCanceledRequests(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	op := func(ctx context.Context) error {
		if n.Add(1) == 10 {
			cancel()
		}
		<-ctx.Done()
		return ctx.Err()
	}

	r, err := loadgen.Run(ctx, loadgen.Config{Clients: 16, Requests: 1000}, op)

	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, r.Errors, "requests cut short by the interruption are not errors")
}

func TestConfigNeedsClientsAndABound(t *testing.T) {
	err := loadgen.Config{Clients: 0, Requests: -1}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "clients")
	assert.Contains(t, err.Error(), "requests: must not be negative")
	assert.ErrorContains(t, loadgen.Config{Clients: 1}.Validate(), "set at least one bound")
	assert.NoError(t, loadgen.Config{Clients: 1, Duration: time.Second}.Validate())
}

// Runs added together read as one: counts, time and latencies summed, the
// first sample of each error class kept.
func TestResultAddSumsRuns(t *testing.T) {
	var a, b loadgen.Result
	a.Clients, a.Requests, a.Errors, a.Elapsed = 4, 10, 1, time.Second
	a.ErrorsByClass, a.Samples = map[string]int{"503": 1}, map[string]string{"503": "first"}
	a.Latency.Record(time.Millisecond)
	b.Clients, b.Requests, b.Errors, b.Elapsed = 4, 30, 2, 3*time.Second
	b.ErrorsByClass, b.Samples = map[string]int{"503": 1, "transport": 1}, map[string]string{"503": "second", "transport": "reset"}
	b.Latency.Record(3 * time.Millisecond)

	var sum loadgen.Result
	sum.Add(a)
	sum.Add(b)
	assert.Equal(t, 4, sum.Clients)
	assert.Equal(t, 40, sum.Requests)
	assert.Equal(t, 3, sum.Errors)
	assert.Equal(t, 4*time.Second, sum.Elapsed)
	assert.InDelta(t, 10.0, sum.Rate(), 1e-9)
	assert.Equal(t, map[string]int{"503": 2, "transport": 1}, sum.ErrorsByClass)
	assert.Equal(t, map[string]string{"503": "first", "transport": "reset"}, sum.Samples)
	assert.Equal(t, uint64(2), sum.Latency.Count())
}
