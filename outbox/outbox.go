// Package outbox is eventfx's transactional outbox on PostgreSQL: a
// service writes its events into a table in the same transaction as its
// own data, and a relay publishes the committed rows to Kafka and deletes
// them once the broker acknowledged them. An event reaches the broker if
// and only if its transaction commits, at least once, in the order of its
// key.
//
//	err := ob.Tx(ctx, func(tx pgx.Tx) error {
//		if _, err := tx.Exec(ctx, "INSERT INTO orders …"); err != nil {
//			return err
//		}
//		_, err := ob.Publish(ctx, tx, "orders", OrderPlaced{ID: id}, app.WithKey(id))
//		return err
//	})
//
// What is written is what app.Publisher.PublishEvent puts on the wire:
// the same ID, key, correlation ID (from the options, else from ctx),
// trace context, headers, content type and JSON codec. app.OutboxModule
// provides an *Outbox and runs the relay in the service; `eventfx outbox
// relay` runs it standalone. docs/outbox.md states the guarantees.
package outbox

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/ids"
	"github.com/eventfx/eventfx/internal/meta"
)

// Schema is the SQL that creates the outbox's tables (schema.sql in this
// package), for teams that run their own migrations. It is idempotent.
//
//go:embed schema.sql
var Schema string

// Slots is the number of slots the outbox's rows are spread over by the
// hash of their key. One relay at a time publishes a slot; several relays
// share the slots between them.
const Slots = 64

// ErrDuplicateID is returned by Publish when the outbox already holds an
// event with the same ID. Nothing is written, and the transaction stays
// usable.
var ErrDuplicateID = errors.New("an event with this ID is already in the outbox")

// notifyChannel is the PostgreSQL channel of outbox.notify.
const notifyChannel = "eventfx_outbox"

// Outbox writes events into the outbox table inside the caller's
// transaction. It is safe for concurrent use.
//
// What wakes the relay of the same process: a commit made through Tx, at
// once; a Publish in a transaction the caller commits itself, within a
// few milliseconds of the commit when the transaction is short (the relay
// looks again 5, 20, 100 and 500 ms after the Publish), else at the next
// poll (outbox.poll_interval). With outbox.notify, Tx also sends a NOTIFY
// after its commit, which wakes relays in other processes.
type Outbox struct {
	st      store
	pool    *pgxpool.Pool // nil on SQLite
	notify  bool
	codec   handlers.Codec
	metrics *Metrics

	// committed holds the slots of rows committed through Tx since the
	// relay last looked; written holds those of rows written by Publish
	// in transactions this package does not commit.
	committed, written atomic.Uint64
	wake, soon         chan struct{}

	// notifyPending counts the commits since the last NOTIFY was sent;
	// notifySlots are their slots.
	notifyPending atomic.Int64
	notifySlots   atomic.Uint64

	// sqlTxs are the transactions TxSQL runs: PublishSQL records the slots
	// it wrote to in them.
	sqlTxs sync.Map // *sql.Tx → *atomic.Uint64
}

// New returns an Outbox on pool. With cfg.Notify, Tx sends a NOTIFY after
// each commit. It does not create the schema (CreateSchema does).
func New(pool *pgxpool.Pool, cfg config.Outbox) *Outbox {
	o := newOutbox(newPGStore(pool), cfg)
	o.pool = pool
	return o
}

// Connect opens the outbox of cfg.DSN (required): PostgreSQL for a
// PostgreSQL connection string, the embedded SQLite store for
// "sqlite:PATH" or "sqlite::memory:" (with package outbox/sqlite
// imported). It does not connect: Ping does. Close closes it.
func Connect(cfg config.Outbox) (*Outbox, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.RequireDSN(); err != nil {
		return nil, err
	}
	if cfg.SQLite() {
		st, err := openSQLite(cfg.DSN)
		if err != nil {
			return nil, err
		}
		return newOutbox(st, cfg), nil
	}
	pool, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	return New(pool, cfg), nil
}

func newOutbox(st store, cfg config.Outbox) *Outbox {
	o := &Outbox{
		st:     st,
		notify: cfg.Notify && st.dialect() == "postgres",
		codec:  handlers.JSON{},
		wake:   make(chan struct{}, 1),
		soon:   make(chan struct{}, 1),
	}
	o.metrics = newMetrics(st)
	return o
}

// Dialect is the outbox's database: "postgres" or "sqlite".
func (o *Outbox) Dialect() string { return o.st.dialect() }

// Ping checks that the outbox's database answers, with an error of one
// line that names it (its password redacted).
func (o *Outbox) Ping(ctx context.Context, cfg config.Outbox) error {
	if err := o.st.ping(ctx); err != nil {
		return fmt.Errorf("outbox: connect to %s: %s", cfg.RedactedDSN(), flatten(err))
	}
	return nil
}

// CreateSchema creates the outbox's tables if they are missing (Schema,
// or SQLiteSchema on SQLite).
func (o *Outbox) CreateSchema(ctx context.Context) error { return o.st.createSchema(ctx) }

// Status reads the backlog per slot and the set-aside rows (ReadStatus).
func (o *Outbox) Status(ctx context.Context) (Status, error) { return o.st.status(ctx) }

// Retry moves set-aside rows back into the outbox (see the function
// Retry).
func (o *Outbox) Retry(ctx context.Context, ids ...string) (int64, error) {
	return o.st.retry(ctx, ids)
}

// CleanInbox deletes the inbox records older than retention (see the
// function CleanInbox).
func (o *Outbox) CleanInbox(ctx context.Context, retention time.Duration) (int64, error) {
	return o.st.cleanInbox(ctx, retention)
}

// Close closes the outbox's connections (the pool New was given too).
func (o *Outbox) Close() { o.st.close() }

// Metrics are the Outbox's metrics, its relay's and its transactional
// handlers': register them on a Prometheus registry (app.OutboxModule
// does).
func (o *Outbox) Metrics() *Metrics { return o.metrics }

// Pool is the connection pool the Outbox was made with; nil on SQLite.
func (o *Outbox) Pool() *pgxpool.Pool { return o.pool }

// DB is the outbox's database for database/sql: TxSQL's. On SQLite it
// holds one connection: inside a transaction, use only the transaction.
func (o *Outbox) DB() *sql.DB { return o.st.db() }

// CreateSchema creates the outbox's tables if they are missing (Schema).
// Several processes may run it at once, and beside running relays and
// handlers: when every table and index exists it takes no lock.
func CreateSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var missing bool
	err := pool.QueryRow(ctx, `SELECT to_regclass('eventfx_outbox') IS NULL OR to_regclass('eventfx_outbox_slot_seq') IS NULL
	OR to_regclass('eventfx_outbox_aside') IS NULL OR to_regclass('eventfx_inbox') IS NULL
	OR to_regclass('eventfx_inbox_handled_at') IS NULL`).Scan(&missing)
	if err != nil {
		return fmt.Errorf("create outbox schema: %w", err)
	}
	if !missing {
		return nil
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Concurrent CREATE … IF NOT EXISTS can collide: one at a time.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, Schema)
		return err
	})
	if err != nil {
		return fmt.Errorf("create outbox schema: %w", err)
	}
	return nil
}

// Advisory lock keys: the schema's, and the class of the slots' locks.
const (
	schemaLock = 0x65766678_00000001 // "evfx", 1
	slotLock   = 0x65766678          // pg_try_advisory_xact_lock(slotLock, slot)
)

// Publish writes event into the outbox in tx, encoded as
// app.Publisher.PublishEvent encodes it (the JSON codec, content_type,
// the key of a handlers.Keyed event, the correlation ID and trace context
// of ctx), with the options applied (app.WithKey, app.WithID,
// app.WithCorrelationID, app.WithHeader). It returns the message as it
// will be published, with its ID and correlation ID. The event is
// published once tx commits, and never if it rolls back.
//
// An ID already in the outbox gives ErrDuplicateID and writes nothing; tx
// stays usable. Any other error is the database's: the caller decides
// whether to roll back.
func (o *Outbox) Publish(ctx context.Context, tx pgx.Tx, topic string, event any, opts ...func(*message.Message)) (*message.Message, error) {
	r, err := o.row(ctx, topic, event, opts)
	if err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, pgInsertSQL, r.args()...)
	if err != nil {
		return nil, fmt.Errorf("outbox: write %s to %s: %w", r.msg.UUID, topic, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, fmt.Errorf("outbox: event %q: %w", r.msg.UUID, ErrDuplicateID)
	}
	o.wrote(tx, r.slot)
	return r.msg, nil
}

// PublishSQL is Publish for a database/sql transaction: one of TxSQL, or
// one of the caller's on the outbox's database (on PostgreSQL, with any
// driver: pgx's stdlib, lib/pq). It is the API that works on both stores.
func (o *Outbox) PublishSQL(ctx context.Context, tx *sql.Tx, topic string, event any, opts ...func(*message.Message)) (*message.Message, error) {
	r, err := o.row(ctx, topic, event, opts)
	if err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, o.st.insertSQL(), r.args()...)
	if err != nil {
		return nil, fmt.Errorf("outbox: write %s to %s: %w", r.msg.UUID, topic, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return nil, fmt.Errorf("outbox: event %q: %w", r.msg.UUID, ErrDuplicateID)
	}
	if slots, ok := o.sqlTxs.Load(tx); ok {
		slots.(*atomic.Uint64).Or(1 << r.slot)
	} else {
		o.wrote(nil, r.slot)
	}
	return r.msg, nil
}

// TxSQL is Tx for database/sql: it runs fn in a transaction on DB and
// commits it when fn returns nil; events written with PublishSQL in it
// wake the relay at once after the commit. It works on both stores.
func (o *Outbox) TxSQL(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := o.st.db().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: begin: %w", err)
	}
	slots := new(atomic.Uint64)
	o.sqlTxs.Store(tx, slots)
	defer o.sqlTxs.Delete(tx)
	defer func() { _ = tx.Rollback() }() // no-op after a commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: commit: %w", err)
	}
	o.committedSlots(slots.Load())
	return nil
}

// committedSlots wakes the relay for the slots of a commit.
func (o *Outbox) committedSlots(slots uint64) {
	if slots == 0 {
		return
	}
	o.committed.Or(slots)
	signal(o.wake)
	if o.notify {
		o.sendNotify(slots)
	}
}

// errNeedsPgx is what the pgx API answers on SQLite.
var errNeedsPgx = errors.New("outbox: Tx, Publish and Handler need a PostgreSQL outbox (pgx); on SQLite use TxSQL, PublishSQL and HandlerSQL")

// Tx runs fn in a transaction on the Outbox's pool and commits it when fn
// returns nil (rolls it back otherwise, or when fn panics). Once it
// committed, the relay of this process is woken at once, and with
// outbox.notify a NOTIFY is sent, after the commit, for relays elsewhere.
// It returns fn's error, or the commit's.
func (o *Outbox) Tx(ctx context.Context, fn func(pgx.Tx) error) error {
	if o.pool == nil {
		return handlers.Permanent(errNeedsPgx)
	}
	inner, err := o.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("outbox: begin: %w", err)
	}
	tx := &ownTx{Tx: inner}
	defer func() { _ = inner.Rollback(context.WithoutCancel(ctx)) }() // no-op after a commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := inner.Commit(ctx); err != nil {
		return fmt.Errorf("outbox: commit: %w", err)
	}
	o.committedSlots(tx.slots)
	return nil
}

// ownTx is a transaction begun by Tx: Publish records the slots it wrote
// to, for the wake-up after the commit.
type ownTx struct {
	pgx.Tx
	slots uint64
}

// wrote records that a row of slot was written in tx.
func (o *Outbox) wrote(tx pgx.Tx, slot int) {
	if t, ok := tx.(*ownTx); ok {
		t.slots |= 1 << slot
		return
	}
	o.written.Or(1 << slot)
	signal(o.soon)
}

// sendNotify sends one NOTIFY for the commits since the last one, after
// they committed: a commit while one is being sent makes another follow.
func (o *Outbox) sendNotify(slots uint64) {
	o.notifySlots.Or(slots)
	if o.notifyPending.Add(1) != 1 {
		return // the sender in flight sends again
	}
	go func() {
		for {
			n := o.notifyPending.Load()
			mask := o.notifySlots.Swap(0)
			// Best effort: the relays' poll finds what a lost NOTIFY
			// announced.
			_, _ = o.pool.Exec(context.Background(), "SELECT pg_notify($1, $2)", notifyChannel, strconv.FormatUint(mask, 16))
			if o.notifyPending.CompareAndSwap(n, 0) {
				return
			}
		}
	}()
}

// signal wakes the receiver of c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// row is an event ready to be written.
type row struct {
	msg     *message.Message
	topic   string
	key     *string
	slot    int
	headers []byte
}

func (r row) args() []any {
	return []any{r.msg.UUID, r.topic, r.key, r.slot, r.msg.Payload, r.headers}
}

// row encodes event as PublishEvent does and stamps what PublishMessages
// would: a missing ID or correlation ID.
func (o *Outbox) row(ctx context.Context, topic string, event any, opts []func(*message.Message)) (row, error) {
	if err := config.ValidTopicName(topic); err != nil {
		return row{}, fmt.Errorf("outbox: topic: %w", err)
	}
	m, err := meta.Encode(ctx, o.codec, topic, event)
	if err != nil {
		return row{}, fmt.Errorf("outbox: encode %T: %w", event, err)
	}
	for _, opt := range opts {
		opt(m)
	}
	if m.UUID == "" {
		m.UUID = ids.New()
	}
	if m.Metadata.Get(meta.CorrelationID) == "" {
		m.Metadata.Set(meta.CorrelationID, ids.New())
	}
	r := row{msg: m, topic: topic}
	headers := make(map[string]string, len(m.Metadata))
	for k, v := range m.Metadata {
		if k != meta.Key {
			headers[k] = v
		}
	}
	if k := m.Metadata.Get(meta.Key); k != "" {
		r.key = &k
		r.slot = SlotOf(k)
	} else {
		r.slot = SlotOf(m.UUID)
	}
	if r.headers, err = json.Marshal(headers); err != nil {
		return row{}, fmt.Errorf("outbox: headers: %w", err)
	}
	return r, nil
}

// SlotOf is the slot of a key (of the ID for an event without a key):
// FNV-1a of its bytes modulo Slots.
func SlotOf(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % Slots)
}
