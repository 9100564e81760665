package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

func TestSecondBrokerOnADataDirInUseRefuses(t *testing.T) {
	dir := t.TempDir()
	first, addr := proctest.Broker(t, dir)
	topic := kafkatest.Unique("locked")
	kafkatest.Produce(t, addr, &kgo.Record{Topic: topic, Value: []byte("kept")})

	bin := proctest.Build(t, eventfxPkg)
	out, code := proctest.Run(t, 30*time.Second, nil, nil, bin, "broker", "--addr", proctest.FreeAddr(t), "--data-dir", dir)
	assert.NotEqual(t, 0, code, out)
	lines := proctest.Lines(out)
	require.Len(t, lines, 1, "one line, got:\n%s", out)
	assert.Contains(t, lines[0], fmt.Sprintf("data dir %s is in use by another broker (pid ", dir))

	// The first broker is untouched, and once it stopped the dir is free.
	assert.Equal(t, int64(1), kafkatest.Count(t, addr, topic))
	first.Stop(20 * time.Second)
	_, again := proctest.Broker(t, dir)
	assert.Equal(t, int64(1), kafkatest.Count(t, again, topic), "the record survived")
	assert.False(t, strings.Contains(out, "panic"), out)
}
