package kafka

import (
	"testing"

	metrics "github.com/rcrowley/go-metrics"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

// The subscriber's Sarama client keeps no metrics, and each kind Sarama
// asks its registry for works (a wrong kind would panic in Sarama).
func TestSaramaConfigDiscardsMetrics(t *testing.T) {
	cfg := config.Config{Service: "svc"}.WithDefaults()
	conn, err := connectionOf(cfg.Kafka, cfg.Service)
	require.NoError(t, err)
	sc, err := saramaConfig(cfg, conn)
	require.NoError(t, err)
	r := sc.MetricRegistry

	assert.NotPanics(t, func() {
		metrics.GetOrRegisterMeter("request-rate", r).Mark(1)
		metrics.GetOrRegisterCounter("requests-in-flight", r).Inc(1)
		metrics.GetOrRegisterGauge("batch-size", r).Update(1)
		metrics.GetOrRegisterHistogram("response-size", r, metrics.NewUniformSample(10)).Update(1)
		metrics.GetOrRegisterTimer("latency", r).Update(1)
		require.NoError(t, r.Register("other", metrics.NewCounter()))
	})
	assert.Empty(t, r.GetAll(), "metrics kept")
	assert.Nil(t, r.Get("request-rate"), "metric kept")
}
