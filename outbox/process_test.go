package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/internal/proctest"
	"github.com/eventfx/eventfx/outbox"
)

// Relays as real processes (`eventfx outbox relay`), killed with SIGKILL
// at random moments while writers commit: nothing is lost, each key keeps
// its order, the outbox ends empty; the repeats a killed relay causes
// (its batch in flight is published again) are counted.
func TestRelayProcessesKilledLoseNothingAndKeepKeyOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	t.Parallel()
	tests := []struct {
		name        string
		relays      int
		exactlyOnce bool
	}{
		{"one relay killed 5 times", 1, false},
		{"two relays, one killed 5 times", 2, false},
		{"exactly-once: one relay killed 5 times, read_committed", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { killRelays(t, tt.relays, tt.exactlyOnce) })
	}
}

func killRelays(t *testing.T, relays int, exactlyOnce bool) {
	const (
		keys    = 200
		perKey  = 100 // 20,000 events
		writers = 8
		kills   = 5
	)
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	_, addr := proctest.Broker(t, "")
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, outbox.CreateSchema(ctx, pool))
	topic := kafkatest.Unique("orders")

	env := proctest.Env(
		"EVENTFX_OUTBOX_DSN", dsn,
		"EVENTFX_OUTBOX_NOTIFY", "true",
		"EVENTFX_OUTBOX_POLL_INTERVAL", "200ms",
		"EVENTFX_OUTBOX_MAX_BACKOFF", "200ms",
		"EVENTFX_OBSERVABILITY_LOG_LEVEL", "warn",
		"EVENTFX_OUTBOX_EXACTLY_ONCE", strconv.FormatBool(exactlyOnce),
	)
	startRelay := func() *proctest.Proc {
		p := proctest.Start(t, bin, env, "outbox", "relay", "--brokers", addr)
		p.WaitOutput(`outbox relay running`, 20*time.Second)
		return p
	}
	procs := make([]*proctest.Proc, relays)
	for i := range procs {
		procs[i] = startRelay()
	}

	// Writers commit through Tx, with a NOTIFY after each commit (the
	// relays are other processes).
	ob := outbox.New(pool, config.Outbox{Notify: true})
	var written atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perKey {
				for k := w; k < keys; k += writers {
					order := fmt.Sprintf("o-%03d", k)
					err := ob.Tx(ctx, func(tx pgx.Tx) error {
						_, err := ob.Publish(ctx, tx, topic, OrderPlaced{Order: order, Seq: i})
						return err
					})
					if !assert.NoError(t, err) {
						return
					}
					written.Add(1)
				}
			}
		})
	}

	// The first relay dies at random moments while the writers write.
	for n := range kills {
		time.Sleep(time.Duration(150+rand.IntN(500)) * time.Millisecond)
		procs[0].Signal(syscall.SIGKILL)
		procs[0].Wait(10 * time.Second)
		t.Logf("kill %d: after %d of %d events written", n+1, written.Load(), keys*perKey)
		procs[0] = startRelay()
	}
	wg.Wait()

	// Read until every event arrived.
	isolation := kgo.ReadUncommitted()
	if exactlyOnce {
		isolation = kgo.ReadCommitted()
	}
	cl := kafkatest.Client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchIsolationLevel(isolation))
	seen := map[string]bool{}
	next := map[string]int{}
	records, repeats := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < keys*perKey && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			records++
			id := kafkatest.Headers(r)["_watermill_message_uuid"]
			if seen[id] {
				repeats++
				return
			}
			seen[id] = true
			var e OrderPlaced
			require.NoError(t, json.Unmarshal(r.Value, &e))
			// A repeat may come late (a killed relay's batch sent again),
			// but an event is never first seen before one earlier in its
			// key.
			require.Equal(t, next[e.Order], e.Seq, "order %s: event %d first seen when %d was due", e.Order, e.Seq, next[e.Order])
			next[e.Order]++
		})
	}
	require.Len(t, seen, keys*perKey, "every committed event delivered (%d records read)", records)
	var st outbox.Status
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		st, err = outbox.ReadStatus(ctx, pool)
		return err == nil && st.Rows == 0 && len(st.Aside) == 0
	}, func() string {
		return fmt.Sprintf("outbox not empty at the end: %d rows, %d set aside", st.Rows, len(st.Aside))
	})
	t.Logf("%d events, %d relay(s), %d kills, exactly-once %v: 0 lost, key order kept, %d repeats (%d records)", len(seen), relays, kills, exactlyOnce, repeats, records)
	if exactlyOnce {
		assert.Zero(t, repeats, "a read_committed consumer sees each event once")
	}
	for _, p := range procs {
		p.Stop(20 * time.Second)
	}
}

func TestOutboxCommandsShowAndRetrySetAsideRows(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	cfg := outboxConfig(addr, dsn)
	s := start(t, cfg)
	ctx := context.Background()
	var id string
	require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
		m, err := s.ob.Publish(ctx, tx, cfg.Poison.Topic, OrderPlaced{Order: "o-1"})
		if err == nil {
			id = m.UUID
		}
		return err
	}))
	var st outbox.Status
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		out, code := proctest.Run(t, 30*time.Second, nil, nil, bin, "outbox", "status", "--dsn", dsn, "--json")
		return code == 0 && json.Unmarshal([]byte(out), &st) == nil && len(st.Aside) == 1
	}, func() string { return fmt.Sprintf("want one set-aside row in status, have %+v", st) })
	assert.Equal(t, id, st.Aside[0].ID)
	assert.Equal(t, fmt.Sprintf("topic %q is the poison topic", cfg.Poison.Topic), st.Aside[0].Reason)

	out, code := proctest.Run(t, 30*time.Second, nil, nil, bin, "outbox", "status", "--dsn", dsn)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "set aside: "+id+" topic="+cfg.Poison.Topic)

	out, code = proctest.Run(t, 30*time.Second, nil, nil, bin, "outbox", "retry", "--dsn", dsn, "--id", id)
	require.Equal(t, 0, code, out)
	assert.Equal(t, "1 row(s) back in the outbox\n", out)
	out, code = proctest.Run(t, 30*time.Second, nil, nil, bin, "outbox", "retry", "--dsn", dsn, "--id", "no-such-id")
	require.Equal(t, 0, code, out)
	assert.Equal(t, "0 row(s) back in the outbox\n", out)
}

func TestOutboxCommandsFailClearlyWithoutADatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no dsn", []string{"outbox", "status"}, "outbox.dsn: required"},
		{"nothing listens", []string{"outbox", "retry", "--dsn", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=2"}, "outbox: connect to postgres://u:[redacted]@127.0.0.1:1/db"},
		{"relay without dsn", []string{"outbox", "relay"}, "outbox.dsn: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := proctest.Run(t, 30*time.Second, nil, proctest.Env("EVENTFX_OUTBOX_DSN", ""), bin, tt.args...)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, tt.want)
			assert.NotContains(t, out, "secret")
		})
	}
}

func TestOutboxExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	t.Parallel()
	bin := proctest.Build(t, "github.com/eventfx/eventfx/examples/outbox")
	story := func(t *testing.T, out string, run int) {
		for _, want := range []string{
			"[orders]   o-2 rolled back: order o-2: amount must be positive, got -5 (no row, no event)",
			"[ledger]   PaymentCaptured o-1 4200",
			"[ledger]   PaymentCaptured o-3 1999",
			"[billing]  skipped the repeat; payments: 2 rows, 6199 in total",
			"== The end",
		} {
			assert.Contains(t, out, want, "run %d", run)
		}
		assert.NotContains(t, out, "PaymentCaptured o-2")
	}
	// Nothing set: the embedded SQLite store.
	out, code := proctest.Run(t, 90*time.Second, nil, proctest.Env("EVENTFX_OUTBOX_DSN", "", "EVENTFX_OBSERVABILITY_LOG_LEVEL", "warn"), bin)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "on the embedded SQLite store")
	story(t, out, 0)

	dsn := pgtest.DSN(t)
	for run := range 2 { // a second run on the same database tells the same story
		out, code := proctest.Run(t, 90*time.Second, nil, proctest.Env("EVENTFX_OUTBOX_DSN", dsn, "EVENTFX_OBSERVABILITY_LOG_LEVEL", "warn"), bin)
		require.Equal(t, 0, code, "run %d:\n%s", run+1, out)
		assert.NotContains(t, out, "SQLite")
		story(t, out, run+1)
	}
}

// The transactional handler's service as real processes, its messages
// redelivered by every means: killed with SIGKILL (3 times, at random
// moments), a rebalance (a second instance joins, then leaves), and an
// offset reset (a new consumer group reads everything again), its relay in
// exactly-once mode. The effect per event counted in the database is 1 for
// every event, and a read_committed consumer sees every emitted event
// once.
func TestTransactionalHandlerProcessesChangeNothingTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	t.Parallel()
	const events, kills = 3000, 3
	bin := proctest.Build(t, "github.com/eventfx/eventfx/outbox/testdata/billing")
	_, addr := proctest.Broker(t, "")
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "CREATE TABLE effects (order_id text, seq int, n int NOT NULL, PRIMARY KEY (order_id, seq))")
	require.NoError(t, err)
	orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
	recs := make([]*kgo.Record, events)
	for i := range recs {
		e := OrderPlaced{Order: fmt.Sprintf("o-%03d", i%100), Seq: i}
		v, _ := json.Marshal(e)
		recs[i] = &kgo.Record{Topic: orders, Key: []byte(e.Order), Value: v, Headers: []kgo.RecordHeader{{Key: "_watermill_message_uuid", Value: fmt.Appendf(nil, "order-%d", i)}}}
	}
	kafkatest.Produce(t, addr, recs...)

	env := func(group string) []string {
		return proctest.Env(
			"ORDERS_TOPIC", orders, "PAYMENTS_TOPIC", payments, "HANDLE_DELAY", "10ms",
			"EVENTFX_SERVICE", "billing-svc", "EVENTFX_KAFKA_CONSUMER_GROUP", group,
			"EVENTFX_KAFKA_BROKERS", addr, "EVENTFX_HTTP_ADDR", "127.0.0.1:0",
			"EVENTFX_KAFKA_SESSION_TIMEOUT", "1s", "EVENTFX_KAFKA_HEARTBEAT_INTERVAL", "100ms",
			"EVENTFX_KAFKA_REBALANCE_TIMEOUT", "1s", "EVENTFX_KAFKA_COMMIT_INTERVAL", "100ms",
			"EVENTFX_OUTBOX_DSN", dsn, "EVENTFX_OUTBOX_POLL_INTERVAL", "100ms", "EVENTFX_OUTBOX_MAX_BACKOFF", "200ms",
			"EVENTFX_OBSERVABILITY_LOG_LEVEL", "warn", "EVENTFX_SHUTDOWN_TIMEOUT", "5s",
			"EVENTFX_OUTBOX_EXACTLY_ONCE", "true",
		)
	}
	startSvc := func(group string) *proctest.Proc {
		p := proctest.Start(t, bin, env(group))
		p.WaitOutput(`billing running`, 30*time.Second)
		return p
	}
	effects := func() (distinct, total int) {
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*), COALESCE(sum(n), 0) FROM effects").Scan(&distinct, &total))
		return distinct, total
	}

	a := startSvc("billing-a")
	for n := range kills {
		// Once it handles again, at a random moment.
		before, _ := effects()
		kafkatest.Eventually(t, 30*time.Second, func() bool { d, _ := effects(); return d > before }, func() string { return "no progress after a restart" })
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		if n == 1 { // a second instance joins: a rebalance
			b := startSvc("billing-a")
			time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
			b.Stop(30 * time.Second) // and leaves: another
		}
		a.Signal(syscall.SIGKILL)
		a.Wait(10 * time.Second)
		d, _ := effects()
		t.Logf("kill %d: %d of %d events handled", n+1, d, events)
		a = startSvc("billing-a")
	}
	kafkatest.Eventually(t, 60*time.Second, func() bool { d, _ := effects(); return d == events }, func() string {
		d, tot := effects()
		return fmt.Sprintf("%d of %d events handled (%d effects)", d, events, tot)
	})
	a.Stop(30 * time.Second)

	// An offset reset: a new group of the same handler reads everything
	// again, and skips it all.
	c := startSvc("billing-reset")
	cl := kafkatest.Client(t, addr)
	adm := kadm.NewClient(cl)
	kafkatest.Eventually(t, 60*time.Second, func() bool {
		offs, err := adm.FetchOffsets(ctx, "billing-reset.billing")
		if err != nil {
			return false
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) { n += max(o.At, 0) })
		return n == events
	}, func() string { return "the reset group did not consume every message" })
	var st outbox.Status
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		st, err = outbox.ReadStatus(ctx, pool)
		return err == nil && st.Rows == 0
	}, func() string { return fmt.Sprintf("outbox not empty at the end: %d rows", st.Rows) })
	c.Stop(30 * time.Second)

	d, total := effects()
	assert.Equal(t, events, d)
	assert.Equal(t, events, total, "each event's effect once")
	emitted := readCommitted(t, addr, payments, events)
	ids := map[string]bool{}
	seqs := map[int]bool{}
	for _, r := range emitted {
		ids[kafkatest.Headers(r)["_watermill_message_uuid"]] = true
		var e OrderPlaced
		require.NoError(t, json.Unmarshal(r.Value, &e))
		seqs[e.Seq] = true
	}
	assert.Len(t, seqs, events, "an emitted event per event")
	assert.Len(t, ids, events, "one ID per emitted event: emitted once, in the committed transaction")
	assert.Equal(t, events, len(emitted), "exactly-once relay: a read_committed consumer sees each emitted event once")
	t.Logf("%d events, %d kills, a rebalance and an offset reset: effects %d, emitted %d distinct, %d records read_committed", events, kills, total, len(ids), len(emitted))
}
