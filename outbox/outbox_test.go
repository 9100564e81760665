package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// OrderPlaced is the event of these tests.
type OrderPlaced struct {
	Order string `json:"order"`
	Seq   int    `json:"seq"`
}

func (e OrderPlaced) EventKey() string { return e.Order }

// service is an app with the outbox and its relay, on a fresh database and
// the broker at addr.
type service struct {
	ob  *outbox.Outbox
	pub *app.Publisher
	reg *prometheus.Registry
	app *fxtest.App
}

func outboxConfig(addr, dsn string) config.Config {
	cfg := kafkatest.Config(addr)
	cfg.Outbox = config.Outbox{DSN: dsn, PollInterval: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	return cfg
}

func start(t *testing.T, cfg config.Config, extra ...fx.Option) *service {
	t.Helper()
	s := &service{}
	s.app = fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, app.OutboxModule,
		fx.Options(extra...), fx.Populate(&s.ob, &s.pub, &s.reg))
	s.app.RequireStart()
	t.Cleanup(func() { s.app.RequireStop() })
	return s
}

// eventsOf decodes the records of topic.
func eventsOf(t *testing.T, recs []*kgo.Record) []OrderPlaced {
	t.Helper()
	out := make([]OrderPlaced, len(recs))
	for i, r := range recs {
		require.NoError(t, json.Unmarshal(r.Value, &out[i]), "record %d: %q", i, r.Value)
	}
	return out
}

func TestOutboxWritesWhatPublishEventPutsOnTheWire(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	s := start(t, outboxConfig(addr, pgtest.DSN(t)))
	topic := kafkatest.Unique("orders")

	// A caller's trace and correlation ID, as a handler or request has them.
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	ctx = handlers.ContextWithCorrelationID(ctx, "corr-1")
	event := OrderPlaced{Order: "o-1", Seq: 1}

	_, err := s.pub.PublishEvent(ctx, topic, event, app.WithID("direct"), app.WithHeader("tenant", "acme"))
	require.NoError(t, err)
	var written string
	require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
		m, err := s.ob.Publish(ctx, tx, topic, event, app.WithID("via-outbox"), app.WithHeader("tenant", "acme"))
		if err == nil {
			written = m.Metadata.Get("correlation_id")
		}
		return err
	}))
	assert.Equal(t, "corr-1", written, "the message Publish returns carries the correlation ID of ctx")

	recs := kafkatest.Read(t, addr, topic, 2, 10*time.Second)
	byID := map[string]*kgo.Record{}
	for _, r := range recs {
		byID[kafkatest.Headers(r)["_watermill_message_uuid"]] = r
	}
	direct, relayed := byID["direct"], byID["via-outbox"]
	require.NotNil(t, direct, kafkatest.Describe(recs))
	require.NotNil(t, relayed, kafkatest.Describe(recs))
	assert.Equal(t, direct.Key, relayed.Key)
	assert.Equal(t, "o-1", string(relayed.Key), "the key of a handlers.Keyed event")
	assert.Equal(t, direct.Value, relayed.Value)
	assert.Equal(t, direct.Partition, relayed.Partition)

	dh, rh := kafkatest.Headers(direct), kafkatest.Headers(relayed)
	for _, h := range []map[string]string{dh, rh} {
		delete(h, "_watermill_message_uuid")
	}
	// Both sends are PRODUCER spans of the caller's trace: the same trace
	// ID, each its own span.
	assert.Equal(t, traceID(dh["traceparent"]), traceID(rh["traceparent"]))
	assert.Equal(t, tid.String(), traceID(rh["traceparent"]))
	delete(dh, "traceparent")
	delete(rh, "traceparent")
	assert.Equal(t, dh, rh, "the same headers besides the ID and the span")
	assert.Equal(t, "corr-1", rh["correlation_id"])
	assert.Equal(t, "application/json", rh["content_type"])
	assert.Equal(t, "acme", rh["tenant"])
}

// traceID is the trace ID of a W3C traceparent.
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return "malformed: " + traceparent
	}
	return parts[1]
}

func TestRolledBackTransactionPublishesNothing(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	s := start(t, outboxConfig(addr, pgtest.DSN(t)))
	topic := kafkatest.Unique("orders")
	ctx := context.Background()

	refused := errors.New("payment refused")
	err := s.ob.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 1}); err != nil {
			return err
		}
		return refused
	})
	require.ErrorIs(t, err, refused)

	// The caller's own transaction, rolled back by the caller.
	tx, err := s.ob.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 2})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	// A committed event after them: once it arrived, the relay has passed
	// the rolled-back ones' place.
	require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
		_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 3})
		return err
	}))
	recs := kafkatest.Read(t, addr, topic, 1, 10*time.Second)
	// Two poll intervals more for anything that should not be there.
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int64(1), kafkatest.Count(t, addr, topic), "only the committed event: %s", kafkatest.Describe(recs))
	assert.Equal(t, []OrderPlaced{{Order: "o-1", Seq: 3}}, eventsOf(t, recs))
	// The committed row is deleted once acknowledged; the others never
	// were rows.
	var st outbox.Status
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		var err error
		st, err = outbox.ReadStatus(ctx, s.ob.Pool())
		return err == nil && st.Rows == 0
	}, func() string { return fmt.Sprintf("outbox not empty: %+v", st) })
}

func TestRelayDeliversEveryKeyInCommitOrder(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	s := start(t, outboxConfig(addr, pgtest.DSN(t)))
	topic := kafkatest.Unique("orders")
	ctx := context.Background()
	const keys, perKey = 20, 50

	var wg sync.WaitGroup
	errs := make(chan error, keys)
	for k := range keys {
		wg.Go(func() {
			order := fmt.Sprintf("o-%d", k)
			for i := range perKey {
				// Some transactions through Tx, some committed by the caller.
				var err error
				if i%2 == 0 {
					err = s.ob.Tx(ctx, func(tx pgx.Tx) error {
						_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: order, Seq: i})
						return err
					})
				} else {
					err = pgx.BeginFunc(ctx, s.ob.Pool(), func(tx pgx.Tx) error {
						_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: order, Seq: i})
						return err
					})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	events := eventsOf(t, kafkatest.Read(t, addr, topic, keys*perKey, 20*time.Second))
	next := map[string]int{}
	for _, e := range events {
		require.Equal(t, next[e.Order], e.Seq, "order %s: event %d arrived when %d was due", e.Order, e.Seq, next[e.Order])
		next[e.Order]++
	}
	assert.Len(t, next, keys)
}

func TestDuplicateEventIDIsAClearErrorAndLeavesTheTransactionUsable(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	s := start(t, outboxConfig(addr, pgtest.DSN(t)))
	topic := kafkatest.Unique("orders")
	ctx := context.Background()

	err := s.ob.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1"}, app.WithID("evt-1")); err != nil {
			return err
		}
		_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 1}, app.WithID("evt-1"))
		require.ErrorIs(t, err, outbox.ErrDuplicateID)
		assert.EqualError(t, err, `outbox: event "evt-1": an event with this ID is already in the outbox`)
		// The transaction goes on.
		_, err = s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 2}, app.WithID("evt-2"))
		return err
	})
	require.NoError(t, err)
	events := eventsOf(t, kafkatest.Read(t, addr, topic, 2, 10*time.Second))
	assert.Equal(t, []OrderPlaced{{Order: "o-1"}, {Order: "o-1", Seq: 2}}, events)
}

func TestBadInputIsRefusedAtPublish(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	s := start(t, outboxConfig(addr, pgtest.DSN(t)))
	ctx := context.Background()
	err := s.ob.Tx(ctx, func(tx pgx.Tx) error {
		_, err := s.ob.Publish(ctx, tx, "bad topic!", OrderPlaced{})
		assert.ErrorContains(t, err, "outbox: topic")
		_, err = s.ob.Publish(ctx, tx, "orders", func() {})
		assert.ErrorContains(t, err, "outbox: encode func()")
		return nil
	})
	require.NoError(t, err)
	st, err := outbox.ReadStatus(ctx, s.ob.Pool())
	require.NoError(t, err)
	assert.Zero(t, st.Rows, "nothing written")
}

func TestPublishSQLWritesInADatabaseSQLTransaction(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	s := start(t, outboxConfig(addr, dsn))
	topic := kafkatest.Unique("orders")
	ctx := context.Background()

	db, err := sql.Open("pgx", dsn) // pgx's database/sql driver
	require.NoError(t, err)
	defer db.Close()
	for i, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: i}, app.WithCorrelationID("c-sql"))
		require.NoError(t, err)
		if commit {
			require.NoError(t, tx.Commit())
		} else {
			require.NoError(t, tx.Rollback())
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	// The committed row is still waiting or already gone: the ID may be
	// in the outbox, and must not be written twice while it is.
	_, err = s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o-1"}, app.WithID("dup"))
	require.NoError(t, err)
	_, err = s.ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: "o-1"}, app.WithID("dup"))
	require.ErrorIs(t, err, outbox.ErrDuplicateID)
	require.NoError(t, tx.Rollback())

	recs := kafkatest.Read(t, addr, topic, 1, 10*time.Second)
	assert.Equal(t, []OrderPlaced{{Order: "o-1", Seq: 1}}, eventsOf(t, recs))
	assert.Equal(t, "c-sql", kafkatest.Headers(recs[0])["correlation_id"])
}

func TestTwoRelaysShareTheWorkWithoutDuplicates(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	cfg := outboxConfig(addr, dsn)
	cfg.Outbox.PollInterval = 20 * time.Millisecond
	cfg.Outbox.BatchSize = 50
	a := start(t, cfg)
	b := start(t, cfg)
	topic := kafkatest.Unique("orders")
	ctx := context.Background()
	const keys, perKey = 100, 40

	// Writers that commit themselves: both relays find the rows by polling.
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			order := fmt.Sprintf("o-%d", k)
			for i := range perKey {
				err := pgx.BeginFunc(ctx, a.ob.Pool(), func(tx pgx.Tx) error {
					_, err := a.ob.Publish(ctx, tx, topic, OrderPlaced{Order: order, Seq: i})
					return err
				})
				if !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	events := eventsOf(t, kafkatest.Read(t, addr, topic, keys*perKey, 30*time.Second))
	time.Sleep(200 * time.Millisecond) // ten polls: duplicates would have arrived
	assert.Equal(t, int64(keys*perKey), kafkatest.Count(t, addr, topic), "each event once")
	next := map[string]int{}
	for _, e := range events {
		require.Equal(t, next[e.Order], e.Seq, "order %s: event %d arrived when %d was due", e.Order, e.Seq, next[e.Order])
		next[e.Order]++
	}
	t.Logf("published: relay a %v, relay b %v", published(t, a), published(t, b))
}

// published reads eventfx_outbox_published_total of s's registry.
func published(t *testing.T, s *service) float64 {
	t.Helper()
	families, err := s.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "eventfx_outbox_published_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("eventfx_outbox_published_total not on the registry")
	return 0
}
