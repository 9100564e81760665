package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/metrics"
)

// lagCollector registers a Lag of the broker at addr tracking group and
// topic.
func lagCollector(t *testing.T, addr, initialOffset, group, topic string) *prometheus.Registry {
	t.Helper()
	lag := metrics.NewLag(metrics.LagConfig{
		Brokers: func() []string { return []string{addr} },
		Kafka:   config.Kafka{InitialOffset: initialOffset},
	})
	t.Cleanup(lag.Close)
	lag.Track(group, topic)
	reg := prometheus.NewRegistry()
	reg.MustRegister(lag)
	return reg
}

// lags returns the lag series of group and topic, by partition.
func lags(t *testing.T, reg prometheus.Gatherer, group, topic string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	prefix := fmt.Sprintf(`eventfx_consumer_lag{group=%q,partition=`, group)
	suffix := fmt.Sprintf(`,topic=%q}`, topic)
	for k, v := range gather(t, reg) {
		if p, ok := strings.CutPrefix(k, prefix); ok {
			if p, ok := strings.CutSuffix(p, suffix); ok {
				out[p] = v
			}
		}
	}
	return out
}

func sum(m map[string]float64) float64 {
	var n float64
	for _, v := range m {
		n += v
	}
	return n
}

func produce(t *testing.T, addr, topic string, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		// Keys spread the records over the partitions.
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte("{}")}
	}
	kafkatest.Produce(t, addr, recs...)
}

// commitEnd commits the group at the end of every partition of topic, as a
// consumer that handled everything would.
func commitEnd(t *testing.T, addr, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	_, err = adm.CommitOffsets(ctx, group, ends.Offsets())
	require.NoError(t, err)
}

func TestLagIsTheMessagesPastTheCommittedOffset(t *testing.T) {
	addr := kafkatest.Broker(t)
	group, topic := kafkatest.Unique("group"), kafkatest.Unique("orders")
	reg := lagCollector(t, addr, config.OffsetOldest, group, topic)

	assert.Empty(t, lags(t, reg, group, topic), "no series before the topic exists")

	produce(t, addr, topic, 5)
	got := lags(t, reg, group, topic)
	assert.Equal(t, map[string]bool{`"0"`: true, `"1"`: true, `"2"`: true, `"3"`: true}, keys(got), "a series per partition")
	assert.Equal(t, 5.0, sum(got), "nothing committed: every message is behind, by partition %v", got)

	commitEnd(t, addr, group, topic)
	assert.Equal(t, 0.0, sum(lags(t, reg, group, topic)), "committed at the end")

	produce(t, addr, topic, 2)
	assert.Equal(t, 2.0, sum(lags(t, reg, group, topic)), "two produced since the commit")
}

func TestLagOfAGroupStartingAtNewestIsZeroUntilItCommits(t *testing.T) {
	addr := kafkatest.Broker(t)
	group, topic := kafkatest.Unique("group"), kafkatest.Unique("orders")
	produce(t, addr, topic, 3)
	reg := lagCollector(t, addr, config.OffsetNewest, group, topic)

	got := lags(t, reg, group, topic)
	assert.Len(t, got, 4, "a series per partition")
	assert.Equal(t, 0.0, sum(got))
}

func TestLagCollectsNothingWithoutBrokersOrOnceClosed(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := kafkatest.Unique("orders")
	produce(t, addr, topic, 1)
	tests := []struct {
		name    string
		brokers []string
		closed  bool
	}{
		{"no brokers (in-memory transport)", nil, false},
		{"closed", []string{addr}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lag := metrics.NewLag(metrics.LagConfig{Brokers: func() []string { return tt.brokers }})
			lag.Track("g", topic)
			reg := prometheus.NewRegistry()
			reg.MustRegister(lag)
			closeIf(lag, tt.closed)

			assert.Empty(t, gather(t, reg))
		})
	}
}

func closeIf(l *metrics.Lag, yes bool) {
	if yes {
		l.Close()
	}
}

func keys(m map[string]float64) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}
