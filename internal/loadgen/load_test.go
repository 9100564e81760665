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
