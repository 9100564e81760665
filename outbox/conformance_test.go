package outbox_test

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
	_ "github.com/eventfx/eventfx/outbox/sqlite"
)

// The conformance suite: what the outbox promises, on each store, through
// the database/sql API both stores speak.

// storeCase is a store the suite runs on: dsn returns a fresh database.
type storeCase struct {
	name string
	dsn  func(t *testing.T) string
}

var storeCases = []storeCase{
	{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	{"sqlite", func(t *testing.T) string { return outbox.SQLitePrefix + filepath.Join(t.TempDir(), "outbox.db") }},
}

// eachStore runs test on every store, in parallel.
func eachStore(t *testing.T, test func(t *testing.T, dsn string)) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			test(t, sc.dsn(t))
		})
	}
}

// exec runs a statement on the outbox's database.
func exec(t *testing.T, ob *outbox.Outbox, q string, args ...any) {
	t.Helper()
	_, err := ob.DB().ExecContext(context.Background(), q, args...)
	require.NoError(t, err, q)
}

func TestConformanceCommitPublishesAndRollbackDoesNot(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn string) {
		addr := kafkatest.Broker(t)
		s := start(t, outboxConfig(addr, dsn))
		assert.Contains(t, []string{"postgres", "sqlite"}, s.ob.Dialect())
		topic := kafkatest.Unique("orders")
		ctx := context.Background()
		exec(t, s.ob, "CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER NOT NULL)")

		const keys, perKey = 8, 25
		for i := range keys * perKey {
			e := OrderPlaced{Order: fmt.Sprintf("o-%d", i%keys), Seq: i}
			require.NoError(t, s.ob.TxSQL(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, amount) VALUES ($1, $2)", fmt.Sprint(i), i+1); err != nil {
					return err
				}
				_, err := s.ob.PublishSQL(ctx, tx, topic, e, app.WithID(fmt.Sprintf("ok-%d", i)))
				return err
			}))
		}
		// A transaction that wrote an event and rolled back: neither its
		// row nor its event.
		refused := errors.New("refused")
		err := s.ob.TxSQL(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, amount) VALUES ($1, $2)", "rolled-back", 1); err != nil {
				return err
			}
			if _, err := s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o-0", Seq: -1}, app.WithID("rolled-back")); err != nil {
				return err
			}
			return refused
		})
		require.ErrorIs(t, err, refused)

		recs := kafkatest.Read(t, addr, topic, keys*perKey, 20*time.Second)
		last := map[string]int{}
		for _, e := range eventsOf(t, recs) {
			require.NotEqual(t, -1, e.Seq, "the rolled-back event was published")
			if prev, ok := last[e.Order]; ok {
				require.Greater(t, e.Seq, prev, "key %s out of order", e.Order)
			}
			last[e.Order] = e.Seq
		}
		var orders int
		require.NoError(t, s.ob.DB().QueryRowContext(ctx, "SELECT count(*) FROM orders").Scan(&orders))
		assert.Equal(t, keys*perKey, orders)
		kafkatest.Eventually(t, 10*time.Second, func() bool {
			st, err := s.ob.Status(ctx)
			return err == nil && st.Rows == 0
		}, func() string { return "the outbox did not empty" })
		time.Sleep(300 * time.Millisecond) // three polls: a repeat would be there
		assert.Equal(t, int64(keys*perKey), kafkatest.Count(t, addr, topic), "each event once")
		assert.Equal(t, float64(keys*perKey), counterVec(t, s, "eventfx_outbox_published_total"))
	})
}

func TestConformanceDuplicateIDIsAnErrorAndTheTransactionGoesOn(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn string) {
		addr := kafkatest.Broker(t)
		s := start(t, outboxConfig(addr, dsn))
		topic := kafkatest.Unique("orders")
		ctx := context.Background()
		require.NoError(t, s.ob.TxSQL(ctx, func(tx *sql.Tx) error {
			if _, err := s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o", Seq: 1}, app.WithID("same")); err != nil {
				return err
			}
			_, err := s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o", Seq: 2}, app.WithID("same"))
			require.ErrorIs(t, err, outbox.ErrDuplicateID)
			assert.Contains(t, err.Error(), `"same"`)
			_, err = s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o", Seq: 3}, app.WithID("other"))
			return err
		}))
		got := eventsOf(t, kafkatest.Read(t, addr, topic, 2, 10*time.Second))
		assert.Equal(t, []OrderPlaced{{Order: "o", Seq: 1}, {Order: "o", Seq: 3}}, got)
	})
}

func TestConformanceRefusedRowIsSetAsideVisibleAndRetried(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn string) {
		addr := kafkatest.Broker(t)
		cfg := outboxConfig(addr, dsn)
		s := start(t, cfg)
		topic := kafkatest.Unique("orders")
		ctx := context.Background()
		poison := cmp.Or(cfg.Poison.Topic, config.DefaultPoisonTopic)
		// An event for the poison topic is refused for good; the rest of
		// its key goes on.
		require.NoError(t, s.ob.TxSQL(ctx, func(tx *sql.Tx) error {
			for i, to := range []string{topic, poison, topic} {
				if _, err := s.ob.PublishSQL(ctx, tx, to, OrderPlaced{Order: "o", Seq: i}, app.WithID(fmt.Sprintf("e-%d", i))); err != nil {
					return err
				}
			}
			return nil
		}))
		got := eventsOf(t, kafkatest.Read(t, addr, topic, 2, 10*time.Second))
		assert.Equal(t, []OrderPlaced{{Order: "o", Seq: 0}, {Order: "o", Seq: 2}}, got)

		var st outbox.Status
		kafkatest.Eventually(t, 10*time.Second, func() bool {
			var err error
			st, err = s.ob.Status(ctx)
			return err == nil && len(st.Aside) == 1
		}, func() string { return fmt.Sprintf("status: %+v", st) })
		a := st.Aside[0]
		assert.Equal(t, "e-1", a.ID)
		assert.Equal(t, poison, a.Topic)
		assert.Equal(t, "o", a.Key)
		assert.Contains(t, a.Reason, "poison topic")
		assert.WithinDuration(t, time.Now(), a.CreatedAt, time.Minute, "times read back as written")
		assert.False(t, a.SetAsideAt.Before(a.CreatedAt))
		assert.Zero(t, st.Rows)

		// Retry puts it back; still refused, it is set aside again.
		n, err := s.ob.Retry(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
		n, err = s.ob.Retry(ctx, "no-such-id")
		require.NoError(t, err)
		assert.Zero(t, n)
		kafkatest.Eventually(t, 10*time.Second, func() bool {
			return counterVec(t, s, "eventfx_outbox_set_aside_total") == 2
		}, func() string { return "the retried row was not set aside again" })
		st, err = s.ob.Status(ctx)
		require.NoError(t, err)
		require.Len(t, st.Aside, 1)
		assert.Equal(t, "e-1", st.Aside[0].ID)
	})
}

func TestConformanceBacklogSurvivesARestart(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn string) {
		if strings.HasSuffix(dsn, ":memory:") {
			t.Skip("an in-memory database ends with its process")
		}
		addr := kafkatest.Broker(t)
		topic := kafkatest.Unique("orders")
		ctx := context.Background()
		writer := outboxConfig(addr, dsn)
		writer.Outbox.Disabled = true // no relay: the rows wait
		w := start(t, writer)
		const events = 50
		for i := range events {
			require.NoError(t, w.ob.TxSQL(ctx, func(tx *sql.Tx) error {
				_, err := w.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o", Seq: i})
				return err
			}))
		}
		st, err := w.ob.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(events), st.Rows)
		require.Len(t, st.Slots, 1, "one key, one slot")
		assert.Equal(t, outbox.SlotOf("o"), st.Slots[0].Slot)
		assert.WithinDuration(t, time.Now(), st.Oldest, time.Minute)
		w.app.RequireStop()

		// The gauges, then a relay of a new process drains what waited.
		r := start(t, outboxConfig(addr, dsn))
		got := eventsOf(t, kafkatest.Read(t, addr, topic, events, 20*time.Second))
		for i, e := range got {
			assert.Equal(t, i, e.Seq)
		}
		kafkatest.Eventually(t, 10*time.Second, func() bool {
			return gauge(t, r, "eventfx_outbox_backlog_rows") == 0
		}, func() string { return "backlog gauge" })
	})
}

func TestConformanceTransactionalHandlerRunsOncePerMessage(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn string) {
		addr := kafkatest.Broker(t)
		orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
		ctx := context.Background()
		const events = 30
		// Every message twice with the same ID: a producer's retry.
		var recs []*kgo.Record
		for i := range events {
			v, _ := json.Marshal(OrderPlaced{Order: fmt.Sprintf("o-%d", i%5), Seq: i})
			rec := &kgo.Record{Topic: orders, Key: fmt.Appendf(nil, "o-%d", i%5), Value: v,
				Headers: []kgo.RecordHeader{{Key: "_watermill_message_uuid", Value: fmt.Appendf(nil, "order-%d", i)}}}
			dup := *rec
			recs = append(recs, rec, &dup)
		}
		kafkatest.Produce(t, addr, recs...)

		billing := fx.Provide(handlers.AsHandler(func(ob *outbox.Outbox) handlers.Handler {
			return outbox.HandlerSQL(ob, "billing", orders, func(ctx context.Context, tx *sql.Tx, e OrderPlaced) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO effects (order_id, seq, n) VALUES ($1, $2, 1)
ON CONFLICT (order_id, seq) DO UPDATE SET n = effects.n + 1`, e.Order, e.Seq); err != nil {
					return err
				}
				_, err := ob.PublishSQL(ctx, tx, payments, PaymentCaptured{Order: e.Order, Seq: e.Seq})
				return err
			}, handlers.ConsumeByKey(0))
		}))
		// The effects table exists before the service starts: a start
		// hook of the test's could run after the router's, and a message
		// handled before the table exists fails until it is poisoned.
		pre, err := outbox.Connect(config.Outbox{DSN: dsn})
		require.NoError(t, err)
		exec(t, pre, "CREATE TABLE IF NOT EXISTS effects (order_id TEXT, seq INTEGER, n INTEGER NOT NULL, PRIMARY KEY (order_id, seq))")
		pre.Close()
		s := start(t, outboxConfig(addr, dsn), app.SubscriberModule, billing)

		kafkatest.Eventually(t, 30*time.Second, func() bool {
			return counterVec(t, s, "eventfx_inbox_duplicates_total") == events
		}, func() string {
			return fmt.Sprintf("skipped %v of %d repeats", counterVec(t, s, "eventfx_inbox_duplicates_total"), events)
		})
		var distinct, total int
		require.NoError(t, s.ob.DB().QueryRowContext(ctx, "SELECT count(*), COALESCE(sum(n), 0) FROM effects").Scan(&distinct, &total))
		assert.Equal(t, events, distinct)
		assert.Equal(t, events, total, "each event's effect once, though each was delivered twice")
		emitted := eventsOf(t, kafkatest.Read(t, addr, payments, events, 20*time.Second))
		time.Sleep(300 * time.Millisecond)
		assert.Equal(t, int64(events), kafkatest.Count(t, addr, payments), "each emitted event once")
		seen := map[int]bool{}
		for _, e := range emitted {
			seen[e.Seq] = true
		}
		assert.Len(t, seen, events)

		n, err := s.ob.CleanInbox(ctx, time.Nanosecond)
		require.NoError(t, err)
		assert.Equal(t, int64(events), n, "records older than the retention go")
	})
}

func TestConformanceExactlyOnceRelay(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn string) {
		addr := kafkatest.Broker(t)
		cfg := outboxConfig(addr, dsn)
		cfg.Outbox.ExactlyOnce = true
		s := start(t, cfg)
		topic := kafkatest.Unique("orders")
		ctx := context.Background()
		const events = 120
		for i := range events {
			require.NoError(t, s.ob.TxSQL(ctx, func(tx *sql.Tx) error {
				_, err := s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: fmt.Sprintf("o-%d", i%4), Seq: i})
				return err
			}))
		}
		recs := readCommitted(t, addr, topic, events)
		assert.Len(t, recs, events, "each event once for a read_committed consumer")
		kafkatest.Eventually(t, 10*time.Second, func() bool {
			st, err := s.ob.Status(ctx)
			return err == nil && st.Rows == 0
		}, func() string { return "the outbox did not empty" })
	})
}

func TestSQLiteStoreErrors(t *testing.T) {
	t.Parallel()
	_, err := outbox.Connect(config.Outbox{DSN: "sqlite:"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs a path")

	// A file that is not a database fails at Ping, naming it.
	path := filepath.Join(t.TempDir(), "not-a-db")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 100)), 0o600))
	cfg := config.Outbox{DSN: outbox.SQLitePrefix + path}
	ob, err := outbox.Connect(cfg)
	require.NoError(t, err)
	defer ob.Close()
	err = ob.Ping(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)

	// The pgx API says what to use instead.
	mem := config.Outbox{DSN: "sqlite::memory:"}
	ob2, err := outbox.Connect(mem)
	require.NoError(t, err)
	defer ob2.Close()
	require.NoError(t, ob2.CreateSchema(context.Background()))
	assert.Nil(t, ob2.Pool())
	err = ob2.Tx(context.Background(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TxSQL")
	assert.True(t, handlers.IsPermanent(err), "a handler's retries would not change it")

	// outbox.notify is PostgreSQL's.
	bad := config.Config{Outbox: config.Outbox{DSN: "sqlite:x.db", Notify: true}}.WithDefaults()
	err = bad.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outbox.notify")
}
