// Package sqlite links the outbox's embedded SQLite store in: import it
// for its effect, and an outbox.dsn of "sqlite:PATH" (a file, created
// when missing) or "sqlite::memory:" (a database that lives as long as
// the process) opens an outbox on it, with nothing installed:
//
//	import _ "github.com/eventfx/eventfx/outbox/sqlite"
//
// It is the zero-setup store for examples, tests and development, as the
// embedded broker is for Kafka; production runs on PostgreSQL. The store
// is modernc.org/sqlite, SQLite compiled to Go (no cgo), kept out of the
// outbox package because it takes long to compile. On SQLite, use the
// database/sql API of the outbox (Outbox.TxSQL, Outbox.PublishSQL,
// outbox.HandlerSQL), which works on PostgreSQL too; the pgx API
// (Outbox.Tx, Outbox.Publish, outbox.Handler) is PostgreSQL's. What differs
// from PostgreSQL is in docs/outbox.md.
package sqlite

import _ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
