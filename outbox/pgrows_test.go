package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/pgtest"
)

// readRows decodes the wire values of a batch as pgx's Scan does, on the
// values a row can hold, and falls back to Scan for other wire formats.
func TestReadRowsAgreesWithScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DSN(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, New(pool, config.Outbox{}).CreateSchema(ctx))
	_, err = pool.Exec(ctx, `INSERT INTO eventfx_outbox (id, topic, key, slot, payload, headers, created_at) VALUES
		('e-1', 'orders', 'k-1', 0, '\x7b7d', '{"content_type":"application/json"}', '2026-12-04 10:11:12.345678+00'),
		('e-2', 'orders', NULL, 63, '', '{}', '1999-12-31 23:59:59.999999+00'),
		('é-3', 'ünïcode', 'ключ', 7, '\x00ff00', '{"a": "b\u00e9", "n": "1"}', '1970-01-01 00:00:00+00'),
		('e-4', 'billing', '', 1, '\xdeadbeef', '{"x":"y"}', clock_timestamp())`)
	require.NoError(t, err)
	q := "SELECT " + rowColumns + " FROM eventfx_outbox ORDER BY seq"

	scanned := func(opts ...any) []outboxRow {
		rows, err := pool.Query(ctx, q, opts...)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
			var o outboxRow
			err := row.Scan(&o.seq, &o.id, &o.topic, &o.key, &o.slot, &o.payload, &o.headers, &o.created)
			return o, err
		})
		require.NoError(t, err)
		return out
	}
	read := func(wantRaw bool, opts ...any) []outboxRow {
		rows, err := pool.Query(ctx, q, opts...)
		require.NoError(t, err)
		require.Equal(t, wantRaw, rawColumns(rows.FieldDescriptions()), "the wire formats")
		out, err := readRows(rows, 2)
		require.NoError(t, err)
		return out
	}
	same := func(want, got []outboxRow) {
		t.Helper()
		require.Len(t, got, len(want))
		for i := range want {
			w, g := want[i], got[i]
			assert.True(t, w.created.Equal(g.created), "row %d: created %v, want %v", i, g.created, w.created)
			w.created, g.created = time.Time{}, time.Time{}
			assert.Equal(t, w, g, "row %d", i)
		}
	}
	want := scanned()
	require.Len(t, want, 4)
	same(want, read(true))
	// Text formats for every column: Scan decodes them.
	text := pgx.QueryResultFormats{pgx.TextFormatCode}
	same(want, read(false, text))
	same(want, scanned(text))
}

// A row value readRows cannot take is an error, not a row.
func TestOutboxRowDecodeRefusesBadValues(t *testing.T) {
	good := func() [][]byte {
		return [][]byte{make([]byte, 8), []byte("e-1"), []byte("orders"), nil, make([]byte, 2), []byte("{}"), []byte("{}"), make([]byte, 8)}
	}
	var topic string
	var o outboxRow
	require.NoError(t, o.decode(good(), &topic))
	for name, bad := range map[string]func(v [][]byte) [][]byte{
		"a column missing": func(v [][]byte) [][]byte { return v[:7] },
		"a NULL id":        func(v [][]byte) [][]byte { v[1] = nil; return v },
		"a short seq":      func(v [][]byte) [][]byte { v[0] = v[0][:4]; return v },
		"infinity":         func(v [][]byte) [][]byte { v[7] = []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}; return v },
	} {
		assert.Error(t, o.decode(bad(good()), &topic), name)
	}
}

// A batch is published topic by topic, in the order of each topic's first
// row, each topic's rows in seq order; a batch of one topic is not copied.
func TestByTopicKeepsTheOrder(t *testing.T) {
	rows := []outboxRow{{seq: 1, topic: "a"}, {seq: 2, topic: "b"}, {seq: 3, topic: "a"}, {seq: 4, topic: "c"}, {seq: 5, topic: "b"}}
	var got [][]int64
	for _, g := range byTopic(rows) {
		var seqs []int64
		for _, r := range g {
			assert.Equal(t, g[0].topic, r.topic)
			seqs = append(seqs, r.seq)
		}
		got = append(got, seqs)
	}
	assert.Equal(t, [][]int64{{1, 3}, {2, 5}, {4}}, got)

	one := rows[:1:1]
	groups := byTopic(append(one, outboxRow{seq: 6, topic: "a"}))
	require.Len(t, groups, 1)
	assert.Len(t, groups[0], 2)
	assert.Nil(t, byTopic(nil))
}
