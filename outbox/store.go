package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// store is an outbox's database: what differs between PostgreSQL and
// SQLite. The Outbox, its relay and its handlers do the rest.
type store interface {
	// dialect is the database's name: "postgres" or "sqlite" (the
	// /readyz check's name).
	dialect() string
	ping(ctx context.Context) error
	createSchema(ctx context.Context) error
	close()
	// db is the database for database/sql transactions (TxSQL).
	db() *sql.DB
	// insertSQL writes one row from (id, topic, key, slot, payload,
	// headers); a duplicate ID writes nothing, without aborting the
	// transaction.
	insertSQL() string
	// begin begins a relay batch's transaction, which excludes every
	// other batch's on the same slot.
	begin(ctx context.Context) (batchTx, error)
	status(ctx context.Context) (Status, error)
	retry(ctx context.Context, ids []string) (int64, error)
	cleanInbox(ctx context.Context, retention time.Duration) (int64, error)
	// backlog is the number of waiting rows, the oldest one's write time
	// (zero when none) and the number of set-aside rows.
	backlog(ctx context.Context) (rows int64, oldest time.Time, aside int64, err error)
}

// batchTx is a relay batch's transaction.
type batchTx interface {
	// take deletes the first rows of slot and returns them in seq order;
	// none when another batch holds the slot.
	take(ctx context.Context, slot, limit int) ([]outboxRow, error)
	// peek returns them without deleting them.
	peek(ctx context.Context, slot, limit int) ([]outboxRow, error)
	// remove deletes the rows of seqs.
	remove(ctx context.Context, seqs []int64) error
	// setAside moves rows, already deleted, to the set-aside table with
	// their reasons.
	setAside(ctx context.Context, rows []asideRow) error
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// inboxSQL records that a handler handled a message; a record that exists
// writes nothing. Both dialects speak it.
const inboxSQL = "INSERT INTO eventfx_inbox (handler, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"

// pgStore is the outbox on PostgreSQL, through a pgx pool.
type pgStore struct {
	pool *pgxpool.Pool
	sql  *sql.DB // on pool, for database/sql transactions
}

func newPGStore(pool *pgxpool.Pool) *pgStore {
	return &pgStore{pool: pool, sql: stdlib.OpenDBFromPool(pool)}
}

func (s *pgStore) dialect() string { return "postgres" }

func (s *pgStore) ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func (s *pgStore) createSchema(ctx context.Context) error { return CreateSchema(ctx, s.pool) }

func (s *pgStore) close() {
	_ = s.sql.Close()
	s.pool.Close()
}

func (s *pgStore) db() *sql.DB { return s.sql }

func (s *pgStore) insertSQL() string { return pgInsertSQL }

// pgInsertSQL writes one row on PostgreSQL.
const pgInsertSQL = `INSERT INTO eventfx_outbox (id, topic, key, slot, payload, headers)
VALUES ($1, $2, $3, $4, $5, $6::json) ON CONFLICT (id) DO NOTHING`

// pgBatchTxSetting is the setting of a batch's transaction, queued after
// its BEGIN: its commit does not wait for the WAL to reach disk. A
// database crash can lose the deletion of a batch already published,
// which is published again (at-least-once), never an event.
const pgBatchTxSetting = "SELECT set_config('synchronous_commit', 'off', true)"

func (s *pgStore) begin(ctx context.Context) (batchTx, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &pgTx{conn: conn}, nil
}

func (s *pgStore) status(ctx context.Context) (Status, error) { return ReadStatus(ctx, s.pool) }

func (s *pgStore) retry(ctx context.Context, ids []string) (int64, error) {
	return Retry(ctx, s.pool, ids...)
}

func (s *pgStore) cleanInbox(ctx context.Context, retention time.Duration) (int64, error) {
	return CleanInbox(ctx, s.pool, retention)
}

func (s *pgStore) backlog(ctx context.Context) (rows int64, oldest time.Time, aside int64, err error) {
	var at *time.Time
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM eventfx_outbox), (SELECT min(created_at) FROM eventfx_outbox),
	(SELECT count(*) FROM eventfx_outbox_aside)`).Scan(&rows, &at, &aside)
	if at != nil {
		oldest = *at
	}
	return rows, oldest, aside, err
}

// pgTx is a batch's transaction on PostgreSQL: the slot is held by a
// transaction-scoped advisory lock, taken without waiting. The
// transaction begins in the round trip of its first statement (take or
// peek): a batch costs two round trips to the database, that one and
// the commit.
type pgTx struct {
	conn *pgxpool.Conn
	tx   pgx.Tx // once begun
}

// rowColumns are the columns a batch reads, in outboxRow's order.
const rowColumns = "seq, id, topic, key, slot, payload, headers, created_at"

// inSlot selects slot $2's rows in seq order. "slot = $2 ORDER BY seq"
// would say the same, but with the table's statistics PostgreSQL then
// prefers walking the primary key in seq order and filtering on slot,
// reading about Slots rows for each one it takes: choosing a batch of 500
// from a 100,000-row backlog took 5.3 ms that way against 1.3 ms through
// the (slot, seq) index (EXPLAIN ANALYZE, PostgreSQL 15). With slot in a
// range and in the ORDER BY, only that index gives the order, and every
// plan, generic or custom, uses it.
const inSlot = "slot BETWEEN $2 AND $2 ORDER BY slot, seq"

func (t *pgTx) take(ctx context.Context, slot, limit int) ([]outboxRow, error) {
	rows, err := t.first(ctx, limit, `WITH lock AS (SELECT pg_try_advisory_xact_lock($1, $2) AS held)
DELETE FROM eventfx_outbox WHERE (SELECT held FROM lock) AND ctid = ANY(ARRAY(
	SELECT ctid FROM eventfx_outbox WHERE `+inSlot+` LIMIT $3))
RETURNING `+rowColumns, int32(slotLock), int32(slot), limit)
	slices.SortFunc(rows, func(a, b outboxRow) int { return int(a.seq - b.seq) })
	return rows, err
}

func (t *pgTx) peek(ctx context.Context, slot, limit int) ([]outboxRow, error) {
	return t.first(ctx, limit, `WITH lock AS (SELECT pg_try_advisory_xact_lock($1, $2) AS held)
SELECT `+rowColumns+` FROM eventfx_outbox
WHERE (SELECT held FROM lock) AND `+inSlot+` LIMIT $3`, int32(slotLock), int32(slot), limit)
}

// first begins the transaction and runs the query q, which returns at
// most limit rows, in one round trip.
func (t *pgTx) first(ctx context.Context, limit int, q string, args ...any) ([]outboxRow, error) {
	if t.tx != nil {
		return nil, errors.New("take batch: the batch's transaction has begun already")
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(pgBatchTxSetting)
	b.Queue(q, args...)
	br := t.conn.SendBatch(ctx, b)
	t.tx = br.Tx()
	for range 2 { // BEGIN, the setting
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("begin: %w", err)
		}
	}
	res, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("take batch: %w", err)
	}
	rows, err := readRows(res, limit)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("take batch: %w", err)
	}
	return rows, nil
}

func (t *pgTx) remove(ctx context.Context, seqs []int64) error {
	if _, err := t.tx.Exec(ctx, "DELETE FROM eventfx_outbox WHERE seq = ANY($1)", seqs); err != nil {
		return fmt.Errorf("delete batch: %w", err)
	}
	return nil
}

func (t *pgTx) setAside(ctx context.Context, rows []asideRow) error {
	if len(rows) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, a := range rows {
		o := a.row
		b.Queue(`INSERT INTO eventfx_outbox_aside (`+rowColumns+`, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (seq) DO NOTHING`,
			o.seq, o.id, o.topic, o.key, o.slot, o.payload, o.headers, o.created, a.reason)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("set aside: %w", err)
	}
	return nil
}

func (t *pgTx) commit(ctx context.Context) error {
	if t.tx == nil {
		return nil
	}
	return t.tx.Commit(ctx)
}

// rollback ends the transaction, unless it committed, and gives the
// connection back (the pool closes one left inside a transaction).
func (t *pgTx) rollback(ctx context.Context) error {
	defer t.conn.Release()
	if t.tx == nil {
		return nil
	}
	return t.tx.Rollback(ctx)
}
