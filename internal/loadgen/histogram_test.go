package loadgen_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/loadgen"
)

// exact is the nearest-rank p-th percentile of sorted values.
func exact(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestPercentilesAreWithinOnePercentOfExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
		n    int
	}{
		{"uniform 0-100ms", func() time.Duration { return time.Duration(rng.Int64N(int64(100 * time.Millisecond))) }, 10000},
		{"exponential, mean 2ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond)) }, 50000},
		{"log-uniform 1µs-10s", func() time.Duration {
			return time.Duration(math.Exp(rng.Float64()*math.Log(1e7)) * float64(time.Microsecond))
		}, 20000},
		{"tiny exact values", func() time.Duration { return time.Duration(rng.Int64N(200)) }, 1000},
		{"one value", func() time.Duration { return 1234567 * time.Nanosecond }, 7},
		{"one sample", func() time.Duration { return 42 * time.Millisecond }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h loadgen.Histogram
			vals := make([]time.Duration, tt.n)
			for i := range vals {
				vals[i] = tt.gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			require.Equal(t, uint64(tt.n), h.Count())
			assert.Equal(t, vals[0], h.Min(), "min is exact")
			assert.Equal(t, vals[len(vals)-1], h.Max(), "max is exact")
			assert.Equal(t, vals[len(vals)-1], h.Percentile(100), "p100 is max")
			for _, p := range []float64{0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99} {
				want, got := exact(vals, p), h.Percentile(p)
				assert.InDelta(t, float64(want), float64(got), float64(want)/100+1, "p%v: exact %v, histogram %v", p, want, got)
				assert.GreaterOrEqual(t, got, h.Min(), "p%v", p)
				assert.LessOrEqual(t, got, h.Max(), "p%v", p)
			}
		})
	}
}

func TestPercentilesAreMonotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h loadgen.Histogram
	for range 10000 {
		h.Record(time.Duration(rng.ExpFloat64() * float64(time.Millisecond)))
	}
	prev := time.Duration(0)
	for p := 1.0; p <= 100; p++ {
		got := h.Percentile(p)
		assert.GreaterOrEqual(t, got, prev, "p%v below p%v", p, p-1)
		prev = got
	}
	s := h.Summary()
	assert.LessOrEqual(t, s.P50, s.P90)
	assert.LessOrEqual(t, s.P90, s.P99)
	assert.LessOrEqual(t, s.P99, s.Max)
}

func TestEmptyHistogramIsZero(t *testing.T) {
	var h loadgen.Histogram
	assert.Equal(t, loadgen.Summary{}, h.Summary())
	assert.Zero(t, h.Mean())
	assert.Zero(t, h.Min())
}

func TestMergeEqualsRecordingEverythingInOne(t *testing.T) {
	var a, b, all loadgen.Histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var empty loadgen.Histogram
	a.Merge(&b)
	a.Merge(&empty)
	empty.Merge(&a)
	for _, h := range []*loadgen.Histogram{&a, &empty} {
		assert.Equal(t, all.Summary(), h.Summary())
		assert.Equal(t, all.Min(), h.Min())
		assert.Equal(t, all.Mean(), h.Mean())
	}
}

func TestNegativeDurationsCountAsZero(t *testing.T) {
	var h loadgen.Histogram
	h.Record(-time.Second)
	h.Record(time.Millisecond)
	assert.Equal(t, time.Duration(0), h.Min())
	assert.Equal(t, time.Duration(0), h.Percentile(50))
	assert.Equal(t, time.Millisecond, h.Max())
}
