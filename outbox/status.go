package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is the state of an outbox: what waits, per slot, and what was
// set aside.
type Status struct {
	// Slots lists the slots with waiting rows, in slot order.
	Slots []SlotStatus `json:"slots"`
	// Rows is the number of waiting rows.
	Rows int64 `json:"rows"`
	// Oldest is when the oldest waiting row was written; zero when none.
	Oldest time.Time `json:"oldest,omitzero"`
	// Aside lists the set-aside rows, oldest first.
	Aside []AsideRow `json:"aside"`
}

// SlotStatus is the backlog of one slot.
type SlotStatus struct {
	Slot   int       `json:"slot"`
	Rows   int64     `json:"rows"`
	Oldest time.Time `json:"oldest"`
}

// AsideRow is a row set aside, and why.
type AsideRow struct {
	ID         string    `json:"id"`
	Topic      string    `json:"topic"`
	Key        string    `json:"key,omitempty"`
	Reason     string    `json:"reason"`
	CreatedAt  time.Time `json:"created_at"`
	SetAsideAt time.Time `json:"set_aside_at"`
}

// total sets Rows and Oldest from the slots.
func (s *Status) total() {
	for _, st := range s.Slots {
		s.Rows += st.Rows
		if s.Oldest.IsZero() || st.Oldest.Before(s.Oldest) {
			s.Oldest = st.Oldest
		}
	}
}

// ReadStatus reads the backlog per slot and the set-aside rows, as of one
// moment (one snapshot).
func ReadStatus(ctx context.Context, pool *pgxpool.Pool) (Status, error) {
	var s Status
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s, fmt.Errorf("outbox status: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q, err := tx.Query(ctx, "SELECT slot, count(*), min(created_at) FROM eventfx_outbox GROUP BY slot ORDER BY slot")
	if err != nil {
		return s, fmt.Errorf("outbox status: %w", err)
	}
	s.Slots, err = pgx.CollectRows(q, func(r pgx.CollectableRow) (SlotStatus, error) {
		var st SlotStatus
		err := r.Scan(&st.Slot, &st.Rows, &st.Oldest)
		return st, err
	})
	if err != nil {
		return s, fmt.Errorf("outbox status: %w", err)
	}
	s.total()
	q, err = tx.Query(ctx, "SELECT id, topic, COALESCE(key, ''), reason, created_at, set_aside_at FROM eventfx_outbox_aside ORDER BY seq")
	if err != nil {
		return s, fmt.Errorf("outbox status: %w", err)
	}
	s.Aside, err = pgx.CollectRows(q, func(r pgx.CollectableRow) (AsideRow, error) {
		var a AsideRow
		err := r.Scan(&a.ID, &a.Topic, &a.Key, &a.Reason, &a.CreatedAt, &a.SetAsideAt)
		return a, err
	})
	if err != nil {
		return s, fmt.Errorf("outbox status: %w", err)
	}
	return s, nil
}

// Retry moves set-aside rows back into the outbox, to be published
// again: those with the given IDs, or all when none is given. Each goes
// to the end of its key's order (a new seq). It returns how many moved.
// A row whose ID is back in the outbox meanwhile stays set aside.
func Retry(ctx context.Context, pool *pgxpool.Pool, ids ...string) (int64, error) {
	if ids == nil {
		ids = []string{} // a nil slice is NULL, whose cardinality is NULL
	}
	tag, err := pool.Exec(ctx, `WITH moved AS (
	DELETE FROM eventfx_outbox_aside a
	WHERE (cardinality($1::text[]) = 0 OR a.id = ANY($1))
	  AND NOT EXISTS (SELECT 1 FROM eventfx_outbox o WHERE o.id = a.id)
	RETURNING seq, id, topic, key, slot, payload, headers, created_at)
INSERT INTO eventfx_outbox (id, topic, key, slot, payload, headers, created_at)
SELECT id, topic, key, slot, payload, headers, created_at FROM moved ORDER BY seq`, ids)
	if err != nil {
		return 0, fmt.Errorf("outbox retry: %w", err)
	}
	return tag.RowsAffected(), nil
}
