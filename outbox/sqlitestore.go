package outbox

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/eventfx/eventfx/config"
)

// SQLiteSchema is the SQL that creates the outbox's tables on SQLite
// (schema_sqlite.sql in this package). It is idempotent.
//
//go:embed schema_sqlite.sql
var SQLiteSchema string

// SQLitePrefix starts the outbox.dsn of an embedded SQLite store:
// "sqlite:PATH" (a file, created when missing) or "sqlite::memory:" (a
// database that lives as long as the process). The driver is linked in
// by importing github.com/eventfx/eventfx/outbox/sqlite.
const SQLitePrefix = config.SQLitePrefix

// sqliteDriver is the database/sql driver name of modernc.org/sqlite,
// which package outbox/sqlite registers.
const sqliteDriver = "sqlite"

// sqliteParams are the connection's settings: writers wait for each
// other (across processes too) instead of failing; WAL lets readers of
// other processes read beside the writer; every transaction takes the
// write lock at its start, so none fails half-way on an upgrade.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// sqliteStore is the outbox on an embedded SQLite database. It holds one
// connection: SQLite has one writer at a time, and a relay batch holds
// the write lock from taking its rows to its commit, as a slot's advisory
// lock does on PostgreSQL, so the events of a key keep their order and no
// two batches publish one row, also with relays in several processes on
// one file.
type sqliteStore struct {
	sql *sql.DB
}

// openSQLite opens the SQLite store of dsn ("sqlite:PATH[?params]").
func openSQLite(dsn string) (*sqliteStore, error) {
	name := strings.TrimPrefix(dsn, SQLitePrefix)
	path, query, _ := strings.Cut(name, "?")
	if path == "" {
		return nil, errors.New(`outbox.dsn: "sqlite:" needs a path: sqlite:PATH, or sqlite::memory:`)
	}
	if !slices.Contains(sql.Drivers(), sqliteDriver) {
		return nil, errors.New(`outbox.dsn: the SQLite store is not linked in: import _ "github.com/eventfx/eventfx/outbox/sqlite"`)
	}
	name = path + "?" + sqliteParams
	if query != "" {
		name += "&" + query
	}
	db, err := sql.Open(sqliteDriver, name)
	if err != nil {
		return nil, fmt.Errorf("outbox.dsn: %w", err)
	}
	// One connection, never closed while the store is open: an in-memory
	// database lives in it.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return &sqliteStore{sql: db}, nil
}

func (s *sqliteStore) dialect() string { return "sqlite" }

func (s *sqliteStore) ping(ctx context.Context) error {
	// A query, not only a connection: a file that is not a database fails.
	var n int
	return s.sql.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n)
}

func (s *sqliteStore) createSchema(ctx context.Context) error {
	if _, err := s.sql.ExecContext(ctx, SQLiteSchema); err != nil {
		return fmt.Errorf("create outbox schema: %w", err)
	}
	return nil
}

func (s *sqliteStore) close() { _ = s.sql.Close() }

func (s *sqliteStore) db() *sql.DB { return s.sql }

func (s *sqliteStore) insertSQL() string {
	return `INSERT INTO eventfx_outbox (id, topic, key, slot, payload, headers)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`
}

func (s *sqliteStore) begin(ctx context.Context) (batchTx, error) {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqliteTx{tx}, nil
}

func (s *sqliteStore) status(ctx context.Context) (Status, error) {
	var st Status
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	q, err := tx.QueryContext(ctx, "SELECT slot, count(*), min(created_at) FROM eventfx_outbox GROUP BY slot ORDER BY slot")
	if err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	for q.Next() {
		var s SlotStatus
		var oldest int64
		if err := q.Scan(&s.Slot, &s.Rows, &oldest); err != nil {
			return st, fmt.Errorf("outbox status: %w", err)
		}
		s.Oldest = time.UnixMicro(oldest)
		st.Slots = append(st.Slots, s)
	}
	st.total()
	if err := q.Err(); err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	q, err = tx.QueryContext(ctx, "SELECT id, topic, COALESCE(key, ''), reason, created_at, set_aside_at FROM eventfx_outbox_aside ORDER BY seq")
	if err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	for q.Next() {
		var a AsideRow
		var created, aside int64
		if err := q.Scan(&a.ID, &a.Topic, &a.Key, &a.Reason, &created, &aside); err != nil {
			return st, fmt.Errorf("outbox status: %w", err)
		}
		a.CreatedAt, a.SetAsideAt = time.UnixMicro(created), time.UnixMicro(aside)
		st.Aside = append(st.Aside, a)
	}
	if err := q.Err(); err != nil {
		return st, fmt.Errorf("outbox status: %w", err)
	}
	if st.Slots == nil {
		st.Slots = []SlotStatus{}
	}
	if st.Aside == nil {
		st.Aside = []AsideRow{}
	}
	return st, nil
}

func (s *sqliteStore) retry(ctx context.Context, ids []string) (int64, error) {
	filter, err := json.Marshal(ids)
	if err != nil || ids == nil {
		filter = []byte("[]")
	}
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// The rows to move: those named (all when none is), unless their ID is
	// back in the outbox.
	const moving = `SELECT a.seq FROM eventfx_outbox_aside a
	WHERE (json_array_length($1) = 0 OR a.id IN (SELECT value FROM json_each($1)))
	  AND NOT EXISTS (SELECT 1 FROM eventfx_outbox o WHERE o.id = a.id)`
	if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS eventfx_retry (seq INTEGER PRIMARY KEY)"); err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM eventfx_retry"); err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO eventfx_retry (seq) "+moving, string(filter)); err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO eventfx_outbox (id, topic, key, slot, payload, headers, created_at)
SELECT id, topic, key, slot, payload, headers, created_at FROM eventfx_outbox_aside
WHERE seq IN (SELECT seq FROM eventfx_retry) ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, "DELETE FROM eventfx_outbox_aside WHERE seq IN (SELECT seq FROM eventfx_retry)"); err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	return n, nil
}

func (s *sqliteStore) cleanInbox(ctx context.Context, retention time.Duration) (int64, error) {
	res, err := s.sql.ExecContext(ctx, "DELETE FROM eventfx_inbox WHERE handled_at < $1", time.Now().Add(-retention).UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("clean inbox: %w", err)
	}
	return res.RowsAffected()
}

func (s *sqliteStore) backlog(ctx context.Context) (rows int64, oldest time.Time, aside int64, err error) {
	var at sql.NullInt64
	err = s.sql.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM eventfx_outbox), (SELECT min(created_at) FROM eventfx_outbox),
	(SELECT count(*) FROM eventfx_outbox_aside)`).Scan(&rows, &at, &aside)
	if at.Valid {
		oldest = time.UnixMicro(at.Int64)
	}
	return rows, oldest, aside, err
}

// sqliteTx is a batch's transaction on SQLite: it holds the database's
// write lock from its start.
type sqliteTx struct{ tx *sql.Tx }

// take takes the first rows of every slot, not only slot's: the batch
// holds the one write lock anyway, so slots share no work out, and a
// batch is as full as the backlog allows. Rows leave in seq order, so
// the events of a key keep theirs.
func (t sqliteTx) take(ctx context.Context, _, limit int) ([]outboxRow, error) {
	rows, err := t.query(ctx, `DELETE FROM eventfx_outbox WHERE seq IN (
	SELECT seq FROM eventfx_outbox ORDER BY seq LIMIT $1)
RETURNING `+rowColumns, limit)
	slices.SortFunc(rows, func(a, b outboxRow) int { return int(a.seq - b.seq) })
	return rows, err
}

// peek peeks at slot's rows alone: in exactly-once mode a batch is one
// slot's, published by the slot's transactional producer.
func (t sqliteTx) peek(ctx context.Context, slot, limit int) ([]outboxRow, error) {
	return t.query(ctx, "SELECT "+rowColumns+" FROM eventfx_outbox WHERE slot = $1 ORDER BY seq LIMIT $2", slot, limit)
}

func (t sqliteTx) query(ctx context.Context, q string, args ...any) ([]outboxRow, error) {
	res, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("take batch: %w", err)
	}
	defer res.Close()
	var rows []outboxRow
	for res.Next() {
		var o outboxRow
		var created int64
		if err := res.Scan(&o.seq, &o.id, &o.topic, &o.key, &o.slot, &o.payload, &o.headers, &created); err != nil {
			return nil, fmt.Errorf("take batch: %w", err)
		}
		o.created = time.UnixMicro(created)
		rows = append(rows, o)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("take batch: %w", err)
	}
	return rows, nil
}

func (t sqliteTx) remove(ctx context.Context, seqs []int64) error {
	list, err := json.Marshal(seqs)
	if err != nil {
		return fmt.Errorf("delete batch: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, "DELETE FROM eventfx_outbox WHERE seq IN (SELECT value FROM json_each($1))", string(list)); err != nil {
		return fmt.Errorf("delete batch: %w", err)
	}
	return nil
}

func (t sqliteTx) setAside(ctx context.Context, rows []asideRow) error {
	for _, a := range rows {
		o := a.row
		_, err := t.tx.ExecContext(ctx, `INSERT INTO eventfx_outbox_aside (`+rowColumns+`, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (seq) DO NOTHING`,
			o.seq, o.id, o.topic, o.key, o.slot, o.payload, o.headers, o.created.UnixMicro(), a.reason)
		if err != nil {
			return fmt.Errorf("set aside: %w", err)
		}
	}
	return nil
}

func (t sqliteTx) commit(context.Context) error { return t.tx.Commit() }

func (t sqliteTx) rollback(context.Context) error { return t.tx.Rollback() }
