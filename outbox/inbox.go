package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventfx/eventfx/handlers"
)

// Handler declares a transactional handler of events of type T: for each
// message, one transaction on ob's pool first records (name, message ID)
// in the inbox (INSERT … ON CONFLICT DO NOTHING), then runs fn in it, and
// commits. A message whose record exists — a redelivery after a crash, a
// rebalance or an offset reset — is acknowledged without running fn again.
// fn's database effects and the events it publishes with ob.Publish in tx
// (which inherit the message's correlation ID and trace) therefore commit
// once per message ID; the relay then publishes those events at least once
// with their IDs.
//
// An error from fn rolls the transaction back (the inbox record too) and
// is retried or poisoned as for any handler; decoding, validation and the
// options are handlers.New's. name is the handler's name, and the inbox's
// key with the message ID: it must be unique among the handlers that share
// the database. Records are kept for outbox.inbox_retention (CleanInbox).
//
//	fx.Provide(handlers.AsHandler(func(ob *outbox.Outbox) handlers.Handler {
//		return outbox.Handler(ob, "billing", "orders", func(ctx context.Context, tx pgx.Tx, e OrderPlaced) error { … })
//	}))
func Handler[T any](ob *Outbox, name, topic string, fn func(ctx context.Context, tx pgx.Tx, e T) error, opts ...handlers.Option) handlers.Handler {
	return handlers.New(name, topic, func(ctx context.Context, e T) error {
		id := handlers.MessageID(ctx)
		return ob.Tx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, inboxSQL, name, id)
			if err != nil {
				return fmt.Errorf("inbox: record %s: %w", id, err)
			}
			if tag.RowsAffected() == 0 {
				ob.metrics.duplicate(name)
				return nil // handled before: acknowledge
			}
			return fn(ctx, tx, e)
		})
	}, opts...)
}

// HandlerSQL is Handler for database/sql: fn runs in a transaction of
// ob.TxSQL, and publishes with ob.PublishSQL in it. It works on both
// stores (on SQLite, Handler cannot).
func HandlerSQL[T any](ob *Outbox, name, topic string, fn func(ctx context.Context, tx *sql.Tx, e T) error, opts ...handlers.Option) handlers.Handler {
	return handlers.New(name, topic, func(ctx context.Context, e T) error {
		id := handlers.MessageID(ctx)
		return ob.TxSQL(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, inboxSQL, name, id)
			if err != nil {
				return fmt.Errorf("inbox: record %s: %w", id, err)
			}
			if n, err := res.RowsAffected(); err == nil && n == 0 {
				ob.metrics.duplicate(name)
				return nil // handled before: acknowledge
			}
			return fn(ctx, tx, e)
		})
	}, opts...)
}

// CleanInbox deletes the inbox records older than retention and returns
// how many it deleted. app.OutboxModule runs it at start and then every
// hour.
func CleanInbox(ctx context.Context, pool *pgxpool.Pool, retention time.Duration) (int64, error) {
	tag, err := pool.Exec(ctx, "DELETE FROM eventfx_inbox WHERE handled_at < clock_timestamp() - make_interval(secs => $1)", retention.Seconds())
	if err != nil {
		return 0, fmt.Errorf("clean inbox: %w", err)
	}
	return tag.RowsAffected(), nil
}
