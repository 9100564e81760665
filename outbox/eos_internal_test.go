package outbox

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker that answers the state's fetches late does not make a relay
// take the slot's state for none (which would publish its last batch
// again): the state is read to the partition's end, aborted transactions
// and their markers included.
func TestExactlyOnceStateIsReadToTheEndOnASlowBroker(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	require.NoError(t, err)
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	opts := []kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.RecordPartitioner(statePartitioner{def: kgo.StickyKeyPartitioner(nil)}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.TransactionTimeout(txnTimeout),
	}
	admin, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	_, err = kadm.NewClient(admin).CreateTopic(ctx, Slots, -1, nil, StateTopic)
	require.NoError(t, err)
	e := &eos{prefix: "shop", opts: opts, admin: admin, ready: true, slots: map[int]*slotProducer{}}
	t.Cleanup(e.close)

	const slot = 3
	sp, err := e.startProducer(ctx, slot)
	require.NoError(t, err)
	txn := func(value string, commit kgo.TransactionEndTry) {
		t.Helper()
		require.NoError(t, sp.cl.BeginTransaction())
		rec := &kgo.Record{Topic: StateTopic, Partition: slot, Key: []byte(e.id(slot)), Value: []byte(value)}
		require.NoError(t, sp.cl.ProduceSync(ctx, rec).FirstErr())
		require.NoError(t, sp.cl.EndTransaction(ctx, commit))
	}
	txn("1,2,3", kgo.TryCommit)
	txn("4,5", kgo.TryCommit)
	for range 40 { // the aborted tail is longer than the first window read back
		txn("6,7", kgo.TryAbort)
	}

	// The first fetches of the state answer after 300 ms, later than a
	// consumer's quiet poll would wait.
	var slowed atomic.Int32
	// (Only the state is fetched here.)
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if slowed.Add(1) <= 3 {
			c.SleepControl(func() { time.Sleep(300 * time.Millisecond) })
		}
		return nil, nil, false
	})

	got, err := e.lastPublished(ctx, slot, e.id(slot))
	require.NoError(t, err)
	assert.Equal(t, map[int64]bool{4: true, 5: true}, got, "the last committed state, past the aborted ones")
	assert.GreaterOrEqual(t, slowed.Load(), int32(3), "the state's fetches were slowed")

	_, err = e.startProducer(ctx, slot+1)
	require.NoError(t, err)
	none, err := e.lastPublished(ctx, slot+1, e.id(slot+1))
	require.NoError(t, err)
	assert.Empty(t, none, "a slot with only its producer's aborted start has no state")
}
