package app_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

// A publish whose context ends before the broker answers returns ctx's
// error, and what was never sent does not land later: after the broker
// is back, the topic holds the messages whose publish succeeded, only.
func TestPublishEndsWithItsContext(t *testing.T) {
	dir := t.TempDir() // the broker comes back with its topics
	b, err := broker.Start(broker.Config{DataDir: dir})
	require.NoError(t, err)
	addr := b.Addr()
	var pub *app.Publisher
	a := fxtest.New(t, app.Core(kafkatest.Config(addr)), app.KafkaModule, app.PublisherModule, fx.Populate(&pub))
	a.RequireStart()
	defer a.RequireStop()
	topic := kafkatest.Unique("ctx")
	ctx := context.Background()
	_, err = pub.Publish(ctx, topic, []byte("before"), app.WithID("before"))
	require.NoError(t, err)

	b.Close() // nobody answers
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = pub.Publish(short, topic, []byte("lost"), app.WithID("lost"))
	cancel()
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "want ctx's error, got %v", err)
	assert.Contains(t, err.Error(), "publish to "+topic)

	b2, err := broker.Start(broker.Config{Addr: addr, DataDir: dir})
	require.NoError(t, err)
	defer b2.Close()
	var last error
	kafkatest.Eventually(t, 20*time.Second, func() bool {
		_, last = pub.Publish(ctx, topic, []byte("after"), app.WithID("after"))
		return last == nil
	}, func() string { return fmt.Sprintf("no publish succeeded after the broker came back: %v", last) })
	recs := kafkatest.Read(t, addr, topic, int(kafkatest.Count(t, addr, topic)), 10*time.Second)
	require.GreaterOrEqual(t, len(recs), 2, "before and after: %s", kafkatest.Describe(recs))
	for _, r := range recs {
		assert.NotEqual(t, "lost", string(r.Value), "a publish that ended with its context landed later: %s", kafkatest.Describe(recs))
	}
}
