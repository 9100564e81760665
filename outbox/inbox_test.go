package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
)

// PaymentCaptured is what the billing handler emits.
type PaymentCaptured struct {
	Order string `json:"order"`
	Seq   int    `json:"seq"`
}

func (e PaymentCaptured) EventKey() string { return e.Order }

// billing is a transactional handler: it counts its effect per event in
// the database and emits PaymentCaptured through the outbox, in the
// inbox's transaction.
func billing(orders, payments string) fx.Option {
	return fx.Provide(handlers.AsHandler(func(ob *outbox.Outbox) handlers.Handler {
		return outbox.Handler(ob, "billing", orders, func(ctx context.Context, tx pgx.Tx, e OrderPlaced) error {
			if _, err := tx.Exec(ctx, `INSERT INTO effects (order_id, seq, n) VALUES ($1, $2, 1)
ON CONFLICT (order_id, seq) DO UPDATE SET n = effects.n + 1`, e.Order, e.Seq); err != nil {
				return err
			}
			_, err := ob.Publish(ctx, tx, payments, PaymentCaptured{Order: e.Order, Seq: e.Seq})
			return err
		}, handlers.ConsumeByKey(0))
	}))
}

func TestTransactionalHandlerChangesNothingTwiceUnderRedelivery(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
	ctx := context.Background()
	const events = 60

	// Every message twice with the same ID: a producer's retry.
	var recs []*kgo.Record
	for i := range events {
		e := OrderPlaced{Order: fmt.Sprintf("o-%d", i%6), Seq: i}
		v, _ := json.Marshal(e)
		rec := &kgo.Record{Topic: orders, Key: []byte(e.Order), Value: v, Headers: []kgo.RecordHeader{{Key: "_watermill_message_uuid", Value: fmt.Appendf(nil, "order-%d", i)}}}
		dup := *rec
		recs = append(recs, rec, &dup)
	}
	kafkatest.Produce(t, addr, recs...)

	run := func(group string) *service {
		cfg := outboxConfig(addr, dsn)
		cfg.Kafka.ConsumerGroup = group
		s := start(t, cfg, app.SubscriberModule, billing(orders, payments))
		return s
	}
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE effects (order_id text, seq int, n int NOT NULL, PRIMARY KEY (order_id, seq))")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	first := run(kafkatest.Unique("first"))
	kafkatest.Read(t, addr, payments, events, 30*time.Second)

	// An offset reset: another group of the same handler reads every
	// message again from the start.
	second := kafkatest.Unique("second")
	again := run(second)
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return counterVec(t, again, "eventfx_inbox_duplicates_total") == 2*events
	}, func() string {
		return fmt.Sprintf("the second group skipped %v of %d deliveries", counterVec(t, again, "eventfx_inbox_duplicates_total"), 2*events)
	})

	var distinct, total int
	require.NoError(t, first.ob.Pool().QueryRow(ctx, "SELECT count(*), COALESCE(sum(n), 0) FROM effects").Scan(&distinct, &total))
	assert.Equal(t, events, distinct)
	assert.Equal(t, events, total, "each event's effect once, though each was delivered 4 times")

	time.Sleep(300 * time.Millisecond) // three polls: a second emission would be there
	emitted := eventsOf(t, kafkatest.Read(t, addr, payments, events, 10*time.Second))
	assert.Equal(t, int64(events), kafkatest.Count(t, addr, payments), "each emitted event once")
	seen := map[int]bool{}
	for _, e := range emitted {
		seen[e.Seq] = true
	}
	assert.Len(t, seen, events)
	dups := counterVec(t, first, "eventfx_inbox_duplicates_total") + counterVec(t, again, "eventfx_inbox_duplicates_total")
	assert.Equal(t, float64(3*events), dups, "every delivery but the first of each message skipped")

	// Old records go: with a retention of zero, CleanInbox deletes them all.
	n, err := outbox.CleanInbox(ctx, first.ob.Pool(), 0)
	require.NoError(t, err)
	assert.Equal(t, int64(events), n)
}

func TestTransactionalHandlerErrorRollsBackItsEffectsAndEvents(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
	attempts := 0
	h := fx.Provide(handlers.AsHandler(func(ob *outbox.Outbox) handlers.Handler {
		return outbox.Handler(ob, "flaky", orders, func(ctx context.Context, tx pgx.Tx, e OrderPlaced) error {
			attempts++
			if _, err := ob.Publish(ctx, tx, payments, PaymentCaptured{Order: e.Order, Seq: attempts}); err != nil {
				return err
			}
			if attempts < 3 {
				return fmt.Errorf("gateway timeout (attempt %d)", attempts)
			}
			return nil
		})
	}))
	cfg := outboxConfig(addr, dsn)
	start(t, cfg, app.SubscriberModule, h)
	v, _ := json.Marshal(OrderPlaced{Order: "o-1"})
	kafkatest.Produce(t, addr, &kgo.Record{Topic: orders, Key: []byte("o-1"), Value: v})
	got := eventsOf(t, kafkatest.Read(t, addr, payments, 1, 20*time.Second))
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int64(1), kafkatest.Count(t, addr, payments), "the failed attempts' events rolled back")
	assert.Equal(t, []OrderPlaced{{Order: "o-1", Seq: 3}}, got, "PaymentCaptured of the third attempt")
}

// counterVec sums the series of a counter vector of s's registry.
func counterVec(t *testing.T, s *service, name string) float64 {
	t.Helper()
	families, err := s.reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestOutboxModuleDeletesInboxRecordsPastTheRetention(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, outbox.Schema)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO eventfx_inbox (handler, message_id, handled_at) VALUES
	('billing', 'old', clock_timestamp() - interval '8 days'), ('billing', 'recent', clock_timestamp() - interval '6 days')`)
	require.NoError(t, err)

	start(t, outboxConfig(addr, dsn)) // the default retention: 7 days
	var left []string
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		rows, err := conn.Query(ctx, "SELECT message_id FROM eventfx_inbox ORDER BY message_id")
		if err != nil {
			return false
		}
		left, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err == nil && len(left) == 1
	}, func() string { return fmt.Sprintf("inbox holds %v", left) })
	assert.Equal(t, []string{"recent"}, left)
}
