package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/bench"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
)

var (
	backlog         = flag.Int("outbox.backlog", 10_000, "rows of BenchmarkOutboxDrain's backlog (the documented figures use 100000)")
	latencyRate     = flag.Int("outbox.rate", 1000, "events per second BenchmarkOutboxLatency's writers commit")
	drainBatch      = flag.Int("outbox.batch", 0, "outbox.batch_size of BenchmarkOutboxDrain's relay (0: the default)")
	drainWorkers    = flag.Int("outbox.workers", 0, "outbox.workers of BenchmarkOutboxDrain's relay (0: the default)")
	drainAnalyze    = flag.Bool("outbox.analyze", false, "ANALYZE the outbox table of BenchmarkOutboxDrain/postgres after filling it, as autovacuum does to a table that keeps a backlog")
	drainProfile    = flag.String("outbox.cpuprofile", "", "write a CPU profile of each timed drain of BenchmarkOutboxDrain's relays to this path, suffixed with the benchmark's name")
	latencyDuration = flag.Duration("outbox.duration", 2*time.Second, "how long BenchmarkOutboxLatency's writers write (the documented figures use 10s)")
)

// benchKeys is how many keys the benchmarks' events spread over.
const benchKeys = 200

// benchService is an app with the transport and publisher, and a pool on
// a fresh database with the outbox's schema; no relay runs.
func benchService(b *testing.B) (*app.Publisher, *pgxpool.Pool, string, string) {
	b.Helper()
	addr := kafkatest.Broker(b)
	dsn := pgtest.DSN(b)
	cfg := outboxConfig(addr, dsn)
	cfg.Outbox.Disabled = true
	var pub *app.Publisher
	var ob *outbox.Outbox
	a := fxStart(b, cfg, &pub, &ob)
	b.Cleanup(func() { _ = a.Stop(context.Background()) })
	return pub, ob.Pool(), addr, dsn
}

// BenchmarkOutboxDrain drains a backlog of -outbox.backlog rows to the
// broker, msgs/s: the relay (postgres); PublishMessages of the same events
// in batches of the relay's size, as many at once as it has workers (the
// ceiling); the relay on the embedded SQLite store (sqlite); Watermill's forwarder over watermill-sql on the same database
// (the peer), with its defaults.
func BenchmarkOutboxDrain(b *testing.B) {
	n := *backlog
	drainCfg := config.Outbox{BatchSize: *drainBatch, Workers: *drainWorkers}.WithDefaults()
	batch, workers := drainCfg.BatchSize, drainCfg.Workers
	b.Run("postgres", func(b *testing.B) {
		pub, pool, _, _ := benchService(b)
		for range b.N {
			b.StopTimer()
			drain(b, outbox.New(pool, config.Outbox{}), pub, drainCfg, n, pgtest.Shared(b))
		}
	})
	b.Run("sqlite", func(b *testing.B) {
		pub, _, _, _ := benchService(b)
		dsn := outbox.SQLitePrefix + filepath.Join(b.TempDir(), "outbox.db")
		for range b.N {
			b.StopTimer()
			ob, err := outbox.Connect(config.Outbox{DSN: dsn})
			require.NoError(b, err)
			require.NoError(b, ob.CreateSchema(context.Background()))
			drain(b, ob, pub, drainCfg, n, nil)
			ob.Close()
		}
	})
	b.Run("publish-batch", func(b *testing.B) {
		pub, _, _, _ := benchService(b)
		for range b.N {
			b.StopTimer()
			topic := kafkatest.Unique("drain")
			msgs := make([]*message.Message, n)
			for i := range msgs {
				e := OrderPlaced{Order: fmt.Sprintf("o-%03d", i%benchKeys), Seq: i / benchKeys}
				payload, _ := json.Marshal(e)
				msgs[i] = message.NewMessage(fmt.Sprintf("e-%d", i), payload)
				app.WithKey(e.Order)(msgs[i])
				msgs[i].Metadata.Set("content_type", "application/json")
			}
			chunks := slices.Collect(slices.Chunk(msgs, batch))
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu := bench.ProcessCPU()
			start := time.Now()
			b.StartTimer()
			for range workers {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(len(chunks)); i = next.Add(1) - 1 {
						if err := pub.PublishMessages(context.Background(), topic, chunks[i]...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(perMsg(bench.ProcessCPU()-cpu, n), "cpu-µs/msg")
		}
	})
	b.Run("watermill-forwarder", func(b *testing.B) {
		pub, _, _, dsn := benchService(b)
		db, err := sql.Open("pgx", dsn)
		require.NoError(b, err)
		b.Cleanup(func() { db.Close() })
		logger := watermill.NopLogger{}
		for range b.N {
			b.StopTimer()
			topic := kafkatest.Unique("drain")
			fwdTopic := kafkatest.Unique("forwarder")
			sqlPub, err := wmsql.NewPublisher(wmsql.BeginnerFromStdSQL(db), wmsql.PublisherConfig{
				SchemaAdapter: wmsql.DefaultPostgreSQLSchema{}, AutoInitializeSchema: true,
			}, logger)
			require.NoError(b, err)
			in := forwarder.NewPublisher(sqlPub, forwarder.PublisherConfig{ForwarderTopic: fwdTopic})
			for start := 0; start < n; start += batch {
				msgs := make([]*message.Message, 0, batch)
				for i := start; i < min(start+batch, n); i++ {
					e := OrderPlaced{Order: fmt.Sprintf("o-%03d", i%benchKeys), Seq: i / benchKeys}
					payload, _ := json.Marshal(e)
					m := message.NewMessage(fmt.Sprintf("e-%d", i), payload)
					app.WithKey(e.Order)(m)
					msgs = append(msgs, m)
				}
				require.NoError(b, in.Publish(topic, msgs...))
			}
			sub, err := wmsql.NewSubscriber(wmsql.BeginnerFromStdSQL(db), wmsql.SubscriberConfig{
				SchemaAdapter:    wmsql.DefaultPostgreSQLSchema{},
				OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
				InitializeSchema: true,
			}, logger)
			require.NoError(b, err)
			out := &countingPublisher{pub: pub}
			fwd, err := forwarder.NewForwarder(sub, out, logger, forwarder.Config{ForwarderTopic: fwdTopic})
			require.NoError(b, err)
			start := time.Now()
			b.StartTimer()
			go func() { _ = fwd.Run(context.Background()) }()
			for out.n.Load() < int64(n) {
				time.Sleep(2 * time.Millisecond)
			}
			b.StopTimer()
			elapsed := time.Since(start)
			require.NoError(b, fwd.Close())
			b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
		}
	})
}

// drain fills ob with n rows, then times its relay draining them, with
// the timer stopped on entry and on return. Besides msgs/s it reports the
// CPU time per message of the process (relay, broker and the store when
// it is SQLite) and, with db, of the PostgreSQL cluster: a drain is
// CPU-bound on a small machine, and CPU time varies less between runs
// than the rate does.
func drain(b *testing.B, ob *outbox.Outbox, pub *app.Publisher, cfg config.Outbox, n int, db *pgtest.Cluster) {
	topic := kafkatest.Unique("drain")
	fill(b, ob, topic, n)
	reg := prometheus.NewRegistry()
	reg.MustRegister(ob.Metrics())
	acked := &ackCounter{pub: pub}
	r, err := outbox.NewRelay(ob, outbox.RelayParams{Config: cfg, Publisher: acked})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if *drainProfile != "" {
		f, err := os.Create(*drainProfile + "-" + strings.ReplaceAll(b.Name(), "/", "-"))
		require.NoError(b, err)
		require.NoError(b, pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	cpu, dbCPU := bench.ProcessCPU(), clusterCPU(b, db)
	start := time.Now()
	b.StartTimer()
	go func() { defer close(done); _ = r.Run(ctx) }()
	// Until the last acknowledgement, watch a counter in memory: a scrape
	// of the outbox's metrics asks the database for the backlog, which
	// every 2 ms would cost the database more than the relay does. Then
	// until the last commit.
	deadline := time.Now().Add(drainTimeout)
	for acked.n.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events acknowledged within %s", acked.n.Load(), n, drainTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for counter(b, reg, "eventfx_outbox_published_total") < float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("the relay's last commits did not come within %s", drainTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	elapsed := time.Since(start)
	cpu, dbCPU = bench.ProcessCPU()-cpu, clusterCPU(b, db)-dbCPU
	cancel()
	<-done
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(perMsg(cpu, n), "cpu-µs/msg")
	if db != nil {
		b.ReportMetric(perMsg(dbCPU, n), "db-cpu-µs/msg")
	}
}

// clusterCPU is the CPU time db's processes have used; 0 without one.
func clusterCPU(b *testing.B, db *pgtest.Cluster) time.Duration {
	if db == nil {
		return 0
	}
	d, err := db.CPU()
	require.NoError(b, err)
	return d
}

func perMsg(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }

// drainTimeout bounds one drain of BenchmarkOutboxDrain.
const drainTimeout = 2 * time.Minute

// ackCounter is the relay's publisher, counting what the broker
// acknowledged.
type ackCounter struct {
	pub *app.Publisher
	n   atomic.Int64
}

func (a *ackCounter) PublishMessages(ctx context.Context, topic string, msgs ...*message.Message) error {
	if err := a.pub.PublishMessages(ctx, topic, msgs...); err != nil {
		return err
	}
	a.n.Add(int64(len(msgs)))
	return nil
}

// countingPublisher publishes through an app.Publisher and counts.
type countingPublisher struct {
	pub *app.Publisher
	n   atomic.Int64
}

func (c *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := c.pub.PublishMessages(context.Background(), topic, msgs...); err != nil {
		return err
	}
	c.n.Add(int64(len(msgs)))
	return nil
}

func (c *countingPublisher) Close() error { return nil }

// fill writes n events over benchKeys keys into the outbox, in
// transactions of 500, outside the timer.
func fill(b *testing.B, ob *outbox.Outbox, topic string, n int) {
	b.Helper()
	ctx := context.Background()
	for start := 0; start < n; start += 500 {
		err := ob.TxSQL(ctx, func(tx *sql.Tx) error {
			for i := start; i < min(start+500, n); i++ {
				if _, err := ob.PublishSQL(ctx, tx, topic, OrderPlaced{Order: fmt.Sprintf("o-%03d", i%benchKeys), Seq: i / benchKeys}); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(b, err)
	}
	if *drainAnalyze && ob.Dialect() == "postgres" {
		_, err := ob.DB().ExecContext(ctx, "ANALYZE eventfx_outbox")
		require.NoError(b, err)
	}
}

// counter reads a counter of reg.
func counter(b *testing.B, reg *prometheus.Registry, name string) float64 {
	families, err := reg.Gather()
	require.NoError(b, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// BenchmarkOutboxLatency: writers commit -outbox.rate events/s through Tx
// for -outbox.duration, the relay in the same process; p50-ms and p99-ms
// from each commit's return to the broker's acknowledgement of its event.
func BenchmarkOutboxLatency(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		pub, pool, _, _ := benchService(b)
		ob := outbox.New(pool, config.Outbox{})
		rec := &ackRecorder{pub: pub, acked: map[string]time.Time{}}
		r, err := outbox.NewRelay(ob, outbox.RelayParams{Publisher: rec})
		require.NoError(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(ctx) }()
		defer func() { cancel(); <-done }()
		topic := kafkatest.Unique("latency")
		for range b.N {
			b.StopTimer()
			total := int(float64(*latencyRate) * latencyDuration.Seconds())
			committed := make(map[string]time.Time, total)
			var mu sync.Mutex
			interval := time.Second / time.Duration(*latencyRate)
			var wg sync.WaitGroup
			b.StartTimer()
			start := time.Now()
			for i := range total {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				wg.Go(func() {
					var id string
					err := ob.Tx(ctx, func(tx pgx.Tx) error {
						m, err := ob.Publish(ctx, tx, topic, OrderPlaced{Order: fmt.Sprintf("o-%03d", i%benchKeys), Seq: i / benchKeys})
						if err == nil {
							id = m.UUID
						}
						return err
					})
					at := time.Now()
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					committed[id] = at
					mu.Unlock()
				})
			}
			wg.Wait()
			for rec.count() < total {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			lat := make([]time.Duration, 0, total)
			rec.mu.Lock()
			for id, c := range committed {
				lat = append(lat, max(rec.acked[id].Sub(c), 0))
			}
			rec.acked = map[string]time.Time{}
			rec.mu.Unlock()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	})
}

// ackRecorder publishes through an app.Publisher and records when each
// message was acknowledged.
type ackRecorder struct {
	pub   *app.Publisher
	mu    sync.Mutex
	acked map[string]time.Time
}

func (a *ackRecorder) PublishMessages(ctx context.Context, topic string, msgs ...*message.Message) error {
	err := a.pub.PublishMessages(ctx, topic, msgs...)
	if err != nil {
		return err
	}
	now := time.Now()
	a.mu.Lock()
	for _, m := range msgs {
		if _, ok := a.acked[m.UUID]; !ok {
			a.acked[m.UUID] = now
		}
	}
	a.mu.Unlock()
	return nil
}

func (a *ackRecorder) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

// BenchmarkOutboxWrite: a business transaction (one INSERT, commit) alone
// and with one outbox event; ns/op and p50-ms of the transaction.
func BenchmarkOutboxWrite(b *testing.B) {
	run := func(b *testing.B, withOutbox bool) {
		_, pool, _, _ := benchService(b)
		ctx := context.Background()
		_, err := pool.Exec(ctx, "CREATE TABLE orders (id text PRIMARY KEY, body jsonb NOT NULL)")
		require.NoError(b, err)
		ob := outbox.New(pool, config.Outbox{})
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			id := fmt.Sprintf("o-%d", i)
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO orders (id, body) VALUES ($1, $2)", id, `{"total": 42}`); err != nil {
					return err
				}
				if withOutbox {
					_, err := ob.Publish(ctx, tx, "orders", OrderPlaced{Order: id}, app.WithKey(id))
					return err
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	}
	b.Run("plain-insert", func(b *testing.B) { run(b, false) })
	b.Run("with-outbox", func(b *testing.B) { run(b, true) })
}

// fxStart starts an app with the outbox module for a benchmark.
func fxStart(b *testing.B, cfg config.Config, targets ...any) *fx.App {
	b.Helper()
	a := fx.New(app.Core(cfg), app.KafkaModule, app.PublisherModule, app.OutboxModule, fx.Populate(targets...), fx.NopLogger)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(b, a.Start(ctx))
	return a
}

// BenchmarkInbox: a transactional handler in key mode (kafka.max_in_flight
// 256) handles b.N events already on the topic — inbox record, one INSERT
// of its own, one event through the outbox, commit — msgs/s.
func BenchmarkInbox(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		b.StopTimer()
		addr := kafkatest.Broker(b)
		dsn := pgtest.DSN(b)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(b, err)
		_, err = conn.Exec(ctx, "CREATE TABLE payments (order_id text, seq int, PRIMARY KEY (order_id, seq))")
		require.NoError(b, err)
		require.NoError(b, conn.Close(ctx))
		orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
		recs := make([]*kgo.Record, b.N)
		for i := range recs {
			e := OrderPlaced{Order: fmt.Sprintf("o-%03d", i%benchKeys), Seq: i}
			v, _ := json.Marshal(e)
			recs[i] = &kgo.Record{Topic: orders, Key: []byte(e.Order), Value: v, Headers: []kgo.RecordHeader{{Key: "_watermill_message_uuid", Value: fmt.Appendf(nil, "order-%d", i)}}}
		}
		kafkatest.Produce(b, addr, recs...)
		var handled atomic.Int64
		h := fx.Provide(handlers.AsHandler(func(ob *outbox.Outbox) handlers.Handler {
			return outbox.Handler(ob, "billing", orders, func(ctx context.Context, tx pgx.Tx, e OrderPlaced) error {
				if _, err := tx.Exec(ctx, "INSERT INTO payments (order_id, seq) VALUES ($1, $2)", e.Order, e.Seq); err != nil {
					return err
				}
				_, err := ob.Publish(ctx, tx, payments, PaymentCaptured{Order: e.Order, Seq: e.Seq})
				if err == nil {
					handled.Add(1)
				}
				return err
			}, handlers.ConsumeByKey(256))
		}))
		cfg := outboxConfig(addr, dsn)
		cfg.Outbox.PollInterval = time.Second
		a := fx.New(app.Core(cfg), app.KafkaModule, app.PublisherModule, app.OutboxModule, app.SubscriberModule, h, fx.NopLogger)
		start := time.Now()
		b.StartTimer()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(b, a.Start(sctx))
		for handled.Load() < int64(b.N) {
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		elapsed := time.Since(start)
		require.NoError(b, a.Stop(ctx))
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	})
}
