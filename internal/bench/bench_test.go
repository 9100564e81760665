package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/bench"
)

func TestRunOnTheEmbeddedBrokerConsumesEveryMessage(t *testing.T) {
	o := bench.Defaults()
	o.Messages, o.Batch, o.Keys, o.Partitions, o.Timeout = 500, 100, 7, 3, time.Minute
	var status bytes.Buffer
	res, err := bench.Run(context.Background(), o, &status)
	require.NoError(t, err, status.String())
	assert.True(t, res.Config.Embedded)
	assert.Equal(t, 3, res.Config.Partitions)
	assert.True(t, strings.HasPrefix(res.Config.Topic, "eventfx.bench."), res.Config.Topic)
	assert.Equal(t, 500, res.Publish.Messages)
	assert.Equal(t, 500, res.Consume.Messages)
	assert.Positive(t, res.Consume.MsgPerSec)
	assert.EqualValues(t, 500, res.Summary.Count)
	assert.LessOrEqual(t, res.Summary.P50, res.Summary.Max)
}

func TestValidateNamesEveryBadFlag(t *testing.T) {
	o := bench.Defaults()
	o.Messages, o.Size, o.Timeout, o.Acks = 0, -1, 0, "some"
	err := o.Validate()
	require.Error(t, err)
	for _, flag := range []string{"--messages", "--size", "--timeout", "--acks"} {
		assert.Contains(t, err.Error(), flag)
	}
	assert.NotContains(t, err.Error(), "\n")
}

func TestRunAtARatePacesThePublishing(t *testing.T) {
	o := bench.Defaults()
	o.Messages, o.Rate, o.Keys, o.Timeout = 1000, 2000, 10, time.Minute
	var status bytes.Buffer
	res, err := bench.Run(context.Background(), o, &status)
	require.NoError(t, err, status.String())
	require.NotNil(t, res.Rate)
	assert.Equal(t, 2000, res.Rate.Requested)
	// 1,000 messages at 2,000/s: half a second of schedule; a shared
	// machine may fall a little behind, never ahead.
	assert.InDelta(t, 2000, res.Rate.Achieved, 300, "achieved rate")
	assert.LessOrEqual(t, res.Rate.Achieved, 2000*1.01)
	assert.GreaterOrEqual(t, res.Publish.Seconds, 0.45, "the schedule, not a burst")
	assert.InDelta(t, res.Rate.MaxBehindMs, float64(res.Rate.MaxBehind)/1e6, 1e-9)
	assert.EqualValues(t, 1000, res.Summary.Count)
	assert.Equal(t, 1000, res.Consume.Messages)
	assert.Contains(t, status.String(), "at 2000/s")
}

func TestRunUnpacedHasNoRate(t *testing.T) {
	o := bench.Defaults()
	o.Messages, o.Batch, o.Timeout = 100, 50, time.Minute
	res, err := bench.Run(context.Background(), o, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Nil(t, res.Rate)
}

func TestValidateRate(t *testing.T) {
	o := bench.Defaults()
	o.Rate = -5
	assert.EqualError(t, o.Validate(), "--rate must be positive (messages per second), got -5")

	o.Rate, o.Messages, o.Timeout = 1000, 60000, time.Minute
	assert.EqualError(t, o.Validate(), "--messages 60000 at --rate 1000 take 1m0s to publish, not less than --timeout 1m0s")

	o.Messages = 59000
	assert.NoError(t, o.Validate())
}
