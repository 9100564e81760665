package main_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

func TestBrokerKeepsRecordsAndGroupOffsetsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b, addr := proctest.Broker(t, dir)
	topic, group := kafkatest.Unique("persist"), kafkatest.Unique("group")
	kafkatest.Produce(t, addr, &kgo.Record{Topic: topic, Value: []byte("one")}, &kgo.Record{Topic: topic, Value: []byte("two")})

	// Consume both in a group and commit.
	c := kafkatest.Client(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := 0
	for got < 2 {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 2 records", got)
		}
		got += fs.NumRecords()
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c.Close()

	b.Stop(20 * time.Second)
	proctest.BrokerAt(t, addr, dir)

	if n := kafkatest.Count(t, addr, topic); n != 2 {
		t.Fatalf("records after restart: want 2, got %d", n)
	}
	if n := kafkatest.Committed(t, addr, group, topic); n != 2 {
		t.Fatalf("committed offsets after restart: want 2, got %d", n)
	}
}
