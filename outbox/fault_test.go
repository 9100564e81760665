package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
)

// Big is an event over the broker's max.message.bytes.
type Big struct {
	Order string `json:"order"`
	Blob  string `json:"blob"`
}

func (e Big) EventKey() string { return e.Order }

func TestRefusedRowsAreSetAsideWithTheirReasonAndRetried(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	cfg := outboxConfig(addr, pgtest.DSN(t))
	s := start(t, cfg)
	topic := kafkatest.Unique("orders")
	ctx := context.Background()

	var tooLarge, poisoned string
	require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
		steps := []func() error{
			func() error { _, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 0}); return err },
			func() error {
				m, err := s.ob.Publish(ctx, tx, topic, Big{Order: "o-1", Blob: strings.Repeat("x", 2<<20)})
				if err == nil {
					tooLarge = m.UUID
				}
				return err
			},
			func() error {
				m, err := s.ob.Publish(ctx, tx, cfg.Poison.Topic, OrderPlaced{Order: "o-1", Seq: 99})
				if err == nil {
					poisoned = m.UUID
				}
				return err
			},
			func() error { _, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 1}); return err },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}))

	// The rest of the key goes on past the refused rows.
	events := eventsOf(t, kafkatest.Read(t, addr, topic, 2, 10*time.Second))
	assert.Equal(t, []OrderPlaced{{Order: "o-1", Seq: 0}, {Order: "o-1", Seq: 1}}, events)

	var st outbox.Status
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		var err error
		st, err = outbox.ReadStatus(ctx, s.ob.Pool())
		return err == nil && len(st.Aside) == 2
	}, func() string { return fmt.Sprintf("want 2 set-aside rows, have %+v", st) })
	assert.Zero(t, st.Rows)
	reasons := map[string]string{}
	for _, a := range st.Aside {
		reasons[a.ID] = a.Reason
		assert.Equal(t, "o-1", a.Key)
	}
	assert.Contains(t, reasons[tooLarge], "MESSAGE_TOO_LARGE")
	assert.Equal(t, fmt.Sprintf("topic %q is the poison topic", cfg.Poison.Topic), reasons[poisoned])
	assert.Equal(t, float64(2), gauge(t, s, "eventfx_outbox_set_aside_rows"))

	// A retry puts a row back in the outbox; refused again, it is set
	// aside again. The other one stays where it is.
	n, err := outbox.Retry(ctx, s.ob.Pool(), poisoned)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		st, err = outbox.ReadStatus(ctx, s.ob.Pool())
		return err == nil && len(st.Aside) == 2 && st.Rows == 0
	}, func() string { return fmt.Sprintf("want the retried row set aside again, have %+v", st) })
	assert.Equal(t, poisoned, st.Aside[1].ID, "set aside again, after the other")

	// A retry without IDs (`eventfx outbox retry`) puts back every
	// set-aside row.
	n, err = outbox.Retry(ctx, s.ob.Pool())
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "a retry without IDs retries every set-aside row")
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		st, err = outbox.ReadStatus(ctx, s.ob.Pool())
		return err == nil && len(st.Aside) == 2 && st.Rows == 0
	}, func() string { return fmt.Sprintf("want both rows set aside again, have %+v", st) })
}

// gauge reads a gauge of s's registry.
func gauge(t *testing.T, s *service, name string) float64 {
	t.Helper()
	families, err := s.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not on the registry", name)
	return 0
}

func TestDatabaseDownRelayWaitsAndResumesLosingNothing(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	cluster, dsn := pgtest.Private(t)
	cfg := outboxConfig(addr, dsn)
	cfg.HTTP.Addr = "127.0.0.1:0"
	var srv *app.HTTPServer
	s := start(t, cfg, app.HTTPModule, fx.Populate(&srv))
	topic := kafkatest.Unique("orders")
	ctx := context.Background()

	publish := func(seq int) error {
		return s.ob.Tx(ctx, func(tx pgx.Tx) error {
			_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: seq})
			return err
		})
	}
	require.NoError(t, publish(0))
	kafkatest.Read(t, addr, topic, 1, 10*time.Second)
	assert.Equal(t, http.StatusOK, readyz(t, srv.Addr()).code)

	cluster.Halt()
	// The caller gets the database's error; nothing is half-written.
	require.Error(t, publish(100))
	r := readyz(t, srv.Addr())
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Contains(t, r.body, `"postgres"`, "readyz names the database")
	time.Sleep(500 * time.Millisecond) // the relay fails and backs off meanwhile

	require.NoError(t, cluster.Resume())
	for i := 1; i < 20; i++ {
		kafkatest.Eventually(t, 10*time.Second, func() bool { return publish(i) == nil }, func() string { return "publish after the database came back" })
	}
	// Every event, in order of first arrival. A batch acknowledged by the
	// broker whose deletion the stopping database did not commit is
	// published again: a repeat, at-least-once.
	events := eventsOf(t, readCommitted(t, addr, topic, 20))
	var first []int
	seen := map[int]bool{}
	for _, e := range events {
		if !seen[e.Seq] {
			seen[e.Seq] = true
			first = append(first, e.Seq)
		}
	}
	want := make([]int, 20)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, want, first, "every event, in order: %+v", events)
	t.Logf("%d records for 20 events", len(events))
	assert.Equal(t, http.StatusOK, readyz(t, srv.Addr()).code)
}

type response struct {
	code int
	body string
}

func readyz(t *testing.T, addr string) response {
	t.Helper()
	res, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{code: res.StatusCode, body: string(b)}
}

func TestBrokerDownRowsStayAndTheRelayResumes(t *testing.T) {
	t.Parallel()
	// An outage, not a new cluster: the broker keeps its data.
	dir := t.TempDir()
	b, err := broker.Start(broker.Config{Partitions: 4, DataDir: dir})
	require.NoError(t, err)
	addr := b.Addr()
	cfg := outboxConfig(addr, pgtest.DSN(t))
	s := start(t, cfg)
	topic := kafkatest.Unique("orders")
	ctx := context.Background()
	publish := func(seq int) {
		require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
			_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: seq})
			return err
		}))
	}
	publish(0)
	kafkatest.Read(t, addr, topic, 1, 10*time.Second)

	b.Close()
	for i := 1; i <= 10; i++ {
		publish(i)
	}
	// The rows wait while no broker answers.
	time.Sleep(time.Second)
	st, err := outbox.ReadStatus(ctx, s.ob.Pool())
	require.NoError(t, err)
	assert.Equal(t, int64(10), st.Rows, "every row stays in the outbox while the broker is down")

	b2, err := broker.Start(broker.Config{Addr: addr, Partitions: 4, DataDir: dir})
	require.NoError(t, err)
	defer b2.Close()
	events := eventsOf(t, kafkatest.Read(t, addr, topic, 11, 30*time.Second))
	seen := map[int]bool{}
	last := -1
	for _, e := range events {
		// Once acknowledged a row is gone; a batch that failed part-way is
		// sent again whole, so repeats are possible, never a gap.
		assert.LessOrEqual(t, e.Seq, last+1, "no gap in %+v", events)
		seen[e.Seq], last = true, e.Seq
	}
	for i := 0; i <= 10; i++ {
		assert.True(t, seen[i], "event %d delivered", i)
	}
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		st, err = outbox.ReadStatus(ctx, s.ob.Pool())
		return err == nil && st.Rows == 0
	}, func() string { return fmt.Sprintf("outbox not empty: %+v", st) })
}

func TestStatusListsTheBacklogPerSlot(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	cfg := outboxConfig(addr, pgtest.DSN(t))
	cfg.Outbox.Disabled = true // writes only: no relay drains
	s := start(t, cfg)
	ctx := context.Background()
	require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
		for i, key := range []string{"a", "a", "b"} {
			if _, err := s.ob.Publish(ctx, tx, "orders", OrderPlaced{Order: key, Seq: i}); err != nil {
				return err
			}
		}
		return nil
	}))
	st, err := outbox.ReadStatus(ctx, s.ob.Pool())
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.Rows)
	slots := map[int]int64{}
	for _, sl := range st.Slots {
		slots[sl.Slot] = sl.Rows
	}
	want := map[int]int64{outbox.SlotOf("a"): 2}
	want[outbox.SlotOf("b")] += 1
	assert.Equal(t, want, slots)
	assert.False(t, st.Oldest.IsZero())
	js, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(js), `"rows":3`)
}

// A row written by hand whose headers are not a JSON object of strings is
// set aside with the reason; the rows beside it are published.
func TestARowWithBadHeadersIsSetAsideNotRetriedForever(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	cfg := outboxConfig(addr, pgtest.DSN(t))
	s := start(t, cfg)
	topic := kafkatest.Unique("orders")
	ctx := context.Background()

	_, err := s.ob.Pool().Exec(ctx, `INSERT INTO eventfx_outbox (id, topic, key, slot, payload, headers) VALUES ('by-hand', $1, 'o-1', 0, '{}', '[1, 2]')`, topic)
	require.NoError(t, err)
	require.NoError(t, s.ob.Tx(ctx, func(tx pgx.Tx) error {
		_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: "o-1", Seq: 1})
		return err
	}))

	events := eventsOf(t, kafkatest.Read(t, addr, topic, 1, 10*time.Second))
	assert.Equal(t, []OrderPlaced{{Order: "o-1", Seq: 1}}, events)
	var st outbox.Status
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		st, err = outbox.ReadStatus(ctx, s.ob.Pool())
		return err == nil && len(st.Aside) == 1 && st.Rows == 0
	}, func() string { return fmt.Sprintf("want the hand-written row set aside, have %+v", st) })
	assert.Equal(t, "by-hand", st.Aside[0].ID)
	assert.Contains(t, st.Aside[0].Reason, "headers")
}
