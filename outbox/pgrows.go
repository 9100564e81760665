package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// readRows reads rows of rowColumns, in the order of rowColumns, and
// closes them. pgx's Scan finds a plan for every column of every row; a
// batch holds hundreds of rows, so when the columns come in the wire
// formats pgx asks PostgreSQL for (binary for the numbers, bytea and
// timestamptz; text and json are text either way), readRows decodes them
// itself, and lets Scan decode anything else. capHint is how many rows
// are expected at most.
func readRows(rows pgx.Rows, capHint int) ([]outboxRow, error) {
	defer rows.Close()
	raw := rawColumns(rows.FieldDescriptions())
	out := make([]outboxRow, 0, capHint)
	var topic string // the batch's rows mostly share one: one string for them
	for rows.Next() {
		var o outboxRow
		var err error
		if raw {
			err = o.decode(rows.RawValues(), &topic)
		} else {
			err = rows.Scan(&o.seq, &o.id, &o.topic, &o.key, &o.slot, &o.payload, &o.headers, &o.created)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// rowWire is the type and wire format readRows decodes for each of
// rowColumns; a format of -1 is either (text and json are the same in
// both).
var rowWire = [...]struct {
	oid    uint32
	format int16
}{
	{pgtype.Int8OID, pgtype.BinaryFormatCode},
	{pgtype.TextOID, -1},
	{pgtype.TextOID, -1},
	{pgtype.TextOID, -1},
	{pgtype.Int2OID, pgtype.BinaryFormatCode},
	{pgtype.ByteaOID, pgtype.BinaryFormatCode},
	{pgtype.JSONOID, -1},
	{pgtype.TimestamptzOID, pgtype.BinaryFormatCode},
}

// rawColumns reports whether the result's columns are rowWire's.
func rawColumns(fds []pgconn.FieldDescription) bool {
	if len(fds) != len(rowWire) {
		return false
	}
	for i, fd := range fds {
		w := rowWire[i]
		if fd.DataTypeOID != w.oid || (w.format >= 0 && fd.Format != w.format) {
			return false
		}
	}
	return true
}

// pgEpoch is the zero of PostgreSQL's binary timestamps, in microseconds.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// decode reads one row of rowWire's columns. topic is the last row's
// topic, reused when this row's is the same. The payload and the headers
// share one allocation.
func (o *outboxRow) decode(v [][]byte, topic *string) error {
	if len(v) != len(rowWire) {
		return fmt.Errorf("outbox row: %d columns, want %d", len(v), len(rowWire))
	}
	for i, c := range v {
		if c == nil && i != 3 { // only key may be NULL
			return fmt.Errorf("outbox row: column %d is NULL", i)
		}
	}
	if len(v[0]) != 8 || len(v[4]) != 2 || len(v[7]) != 8 {
		return errors.New("outbox row: a number of the wrong size")
	}
	o.seq = int64(binary.BigEndian.Uint64(v[0]))
	o.id = string(v[1])
	if string(v[2]) != *topic {
		*topic = string(v[2])
	}
	o.topic = *topic
	if v[3] != nil {
		key := string(v[3])
		o.key = &key
	}
	o.slot = int16(binary.BigEndian.Uint16(v[4]))
	buf := make([]byte, len(v[5])+len(v[6]))
	n := copy(buf, v[5])
	copy(buf[n:], v[6])
	o.payload, o.headers = buf[:n:n], buf[n:]
	us := int64(binary.BigEndian.Uint64(v[7]))
	if us == math.MaxInt64 || us == math.MinInt64 { // PostgreSQL's infinity and -infinity
		return fmt.Errorf("outbox row %d: created_at is infinite", o.seq)
	}
	o.created = time.UnixMicro(pgEpoch + us)
	return nil
}
