package poison

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The replay ledger is a Kafka topic next to the poison topic,
// "<poison topic>.replayed" (LedgerTopic), holding one record per poison
// record that was replayed: its key is "<partition>/<offset>" of the poison
// record, its value a JSON Entry saying where the replay went and when. A
// replay run reads the whole ledger (to its end offsets) before it replays
// anything and skips the poison records it names, whatever filters the
// earlier runs used; a record a filter skipped has no entry, so a later run
// replays it.
//
// A run writes the replayed record first (acks from all in-sync replicas),
// and only then its ledger entry. A crash (or a failed ledger write)
// between the two leaves a replayed record without an entry: a later run
// replays it again, so the message may be delivered twice — at-least-once,
// as everywhere in eventfx — but a poison record is never marked replayed
// without having been replayed. Two runs on the same poison topic at the
// same time may both replay a record; do not run them concurrently.

// LedgerSuffix is appended to the poison topic's name to name its ledger.
const LedgerSuffix = ".replayed"

// LedgerTopic returns the ledger topic of poisonTopic.
func LedgerTopic(poisonTopic string) string { return poisonTopic + LedgerSuffix }

// Entry is one ledger record: a poison record that was replayed.
type Entry struct {
	// PoisonPartition and PoisonOffset locate the poison record; they are
	// the ledger record's key.
	PoisonPartition int32 `json:"poison_partition"`
	PoisonOffset    int64 `json:"poison_offset"`
	// ID is the replayed message's ID.
	ID string `json:"id"`
	// Topic, Partition and Offset locate the replayed record.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// ReplayedAt is when the replayed record was acknowledged.
	ReplayedAt time.Time `json:"replayed_at"`
	// By is who asked for the replay (ReplayOptions.By); "" when not said.
	By string `json:"replayed_by,omitempty"`
}

// NewEntry returns the ledger entry of poison record p, replayed as r
// (a record the broker acknowledged, so with its partition and offset).
func NewEntry(p Record, r *kgo.Record, at time.Time) Entry {
	return Entry{
		PoisonPartition: p.PoisonPartition,
		PoisonOffset:    p.PoisonOffset,
		ID:              p.ID,
		Topic:           r.Topic,
		Partition:       r.Partition,
		Offset:          r.Offset,
		ReplayedAt:      at.UTC(),
	}
}

// LedgerKey is the ledger key of the poison record at partition/offset.
func LedgerKey(partition int32, offset int64) string {
	return strconv.FormatInt(int64(partition), 10) + "/" + strconv.FormatInt(offset, 10)
}

// Record returns the ledger record of e on ledgerTopic.
func (e Entry) Record(ledgerTopic string) *kgo.Record {
	v, _ := json.Marshal(e) // a struct of plain fields: cannot fail
	return &kgo.Record{Topic: ledgerTopic, Key: []byte(LedgerKey(e.PoisonPartition, e.PoisonOffset)), Value: v}
}

// ParseEntry reads a ledger record. The key is what counts: a record whose
// value is not a JSON Entry still marks its poison record as replayed (with
// an unknown ID).
func ParseEntry(r *kgo.Record) (Entry, error) {
	ps, ofs, ok := strings.Cut(string(r.Key), "/")
	p, perr := strconv.ParseInt(ps, 10, 32)
	o, oerr := strconv.ParseInt(ofs, 10, 64)
	if !ok || perr != nil || oerr != nil || p < 0 || o < 0 {
		return Entry{}, fmt.Errorf("ledger record %d/%d: key %q is not <partition>/<offset>", r.Partition, r.Offset, r.Key)
	}
	var e Entry
	if json.Unmarshal(r.Value, &e) != nil {
		e = Entry{}
	}
	e.PoisonPartition, e.PoisonOffset = int32(p), o
	return e, nil
}

// Ledger is the set of poison records already replayed, as read from the
// ledger topic. The zero value is not usable; use NewLedger. It is not safe
// for concurrent use.
type Ledger struct {
	ids map[position]string
}

type position struct {
	partition int32
	offset    int64
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{ids: map[position]string{}} }

// Add records e.
func (l *Ledger) Add(e Entry) { l.ids[position{e.PoisonPartition, e.PoisonOffset}] = e.ID }

// Len is the number of entries.
func (l *Ledger) Len() int { return len(l.ids) }

// Has reports whether poison record p was replayed: the ledger has an entry
// for its partition and offset, with p's message ID when both IDs are known
// (a poison topic deleted and created again reuses offsets; its records
// have other IDs, and are not mistaken for replayed ones).
func (l *Ledger) Has(p Record) bool {
	id, ok := l.ids[position{p.PoisonPartition, p.PoisonOffset}]
	return ok && (id == "" || p.ID == "" || id == p.ID)
}
