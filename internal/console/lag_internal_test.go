package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestStates follows one handler's partition through samples the
// broker would give, and checks the state the tracker gives it each
// time.
func TestStates(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		after      time.Duration
		committed  int64
		end        int64
		groupState string
		poisoned   int
		state      string
	}{
		{"nothing to consume", 0, 10, 10, "Stable", 0, StateIdle},
		{"new records, a commit behind", time.Second, 10, 20, "Stable", 0, StateConsuming},
		{"commits move", 20 * time.Second, 15, 25, "Stable", 0, StateConsuming},
		{"no commit for 10s", 30 * time.Second, 15, 30, "Stable", 0, StateConsuming},
		{"no commit for 30s", 50 * time.Second, 15, 30, "Stable", 0, StateStalled},
		{"it moves again", 51 * time.Second, 16, 30, "Stable", 0, StateConsuming},
		{"a rebalance wins over the rest", 90 * time.Second, 16, 30, "PreparingRebalance", 1, StateRebalancing},
		{"a poisoned message: failing", 91 * time.Second, 30, 30, "Stable", 1, StateFailing},
		{"caught up", 92 * time.Second, 30, 30, "Stable", 0, StateIdle},
	}
	tr := newTracker(Options{}.withDefaults())
	for _, tt := range tests {
		now := t0.Add(tt.after)
		tr.poisoned = map[string][]time.Time{}
		for range tt.poisoned {
			tr.poisoned["svc.h"] = append(tr.poisoned["svc.h"], now)
		}
		ls := []HandlerLag{{ConsumerGroup: "svc.h", Topic: "t", GroupState: tt.groupState, Partitions: []PartitionLag{
			{Partition: 0, Committed: tt.committed, End: tt.end, Lag: tt.end - tt.committed},
		}}}
		born := map[string]time.Time{position("t", 0, tt.committed): now.Add(-4 * time.Second)}
		tr.settle(ls, born, now)
		assert.Equal(t, tt.state, ls[0].State, tt.name)
		assert.Equal(t, tt.end-tt.committed, ls[0].Lag, tt.name)
		if ls[0].Lag > 0 {
			assert.Equal(t, 4.0, ls[0].LagSeconds, "%s: the age of the oldest unconsumed record", tt.name)
		}
	}
	h := tr.history["svc.h"]
	assert.Len(t, h, len(tests), "one point per sample")
	assert.Equal(t, int64(10), h[1].Lag)
}

func TestHistoryKeepsTheLastSamples(t *testing.T) {
	tr := newTracker(Options{History: 3}.withDefaults())
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		ls := []HandlerLag{{ConsumerGroup: "g", Topic: "t", Partitions: []PartitionLag{{Committed: 0, End: int64(i), Lag: int64(i)}}}}
		tr.settle(ls, nil, t0.Add(time.Duration(i)*time.Second))
	}
	var lags []int64
	for _, p := range tr.history["g"] {
		lags = append(lags, p.Lag)
	}
	assert.Equal(t, []int64{2, 3, 4}, lags)
}

func TestTheTrackerForgetsHandlersThatAreGone(t *testing.T) {
	tr := newTracker(Options{}.withDefaults())
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	sample := func(groups ...string) {
		var ls []HandlerLag
		for _, g := range groups {
			ls = append(ls, HandlerLag{ConsumerGroup: g, Topic: "t", Partitions: []PartitionLag{{Committed: 1, End: 5, Lag: 4}}})
		}
		tr.settle(ls, nil, now)
		now = now.Add(time.Second)
	}
	sample("svc.a", "svc.b")
	sample("svc.b")
	assert.NotContains(t, tr.history, "svc.a")
	assert.Contains(t, tr.history, "svc.b")
	assert.Len(t, tr.progress, 1, "only svc.b's partition: %v", tr.progress)
}
