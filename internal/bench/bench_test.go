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
