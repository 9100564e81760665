package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafka"
)

// StateTopic holds the relay's state in exactly-once mode: per slot, in
// partition slot, the seqs of the rows each committed Kafka transaction
// published (comma-separated), keyed by the slot's transactional ID.
const StateTopic = "eventfx.outbox.state"

// Exactly-once mode (outbox.exactly_once): each slot has a transactional
// producer whose ID names the service and the slot. A batch is published
// in one Kafka transaction with a state record (the batch's seqs, in
// partition slot of StateTopic); only then are its rows deleted, before
// the slot's next batch is taken, so only the last committed batch of a
// slot can still be in the table. A relay that takes a slot over starts
// its producer (which fences the previous owner's and aborts its open
// transaction), reads the slot's last committed state, and deletes
// without publishing the rows it names: what a dead relay published but
// did not delete is not published again. (Seqs, not a high-water mark: a
// row with a lower seq may commit after a higher one was published.)
// read_committed consumers see each event once.
type eos struct {
	prefix string
	opts   []kgo.Opt

	startMu sync.Mutex // start, one at a time
	admin   *kgo.Client
	ready   bool

	mu    sync.Mutex
	slots map[int]*slotProducer
}

// slotProducer is the transactional producer of one slot, and the seqs
// the slot's last committed transaction published.
type slotProducer struct {
	cl        *kgo.Client
	published map[int64]bool
	known     bool // published was read
}

func newEOS(p RelayParams) (*eos, error) {
	if p.Brokers == nil {
		return nil, errors.New("outbox relay: exactly-once needs the brokers")
	}
	if p.TransactionalPrefix == "" {
		return nil, errors.New("outbox relay: exactly-once needs a transactional ID prefix")
	}
	return &eos{prefix: p.TransactionalPrefix, slots: map[int]*slotProducer{}}, nil
}

// start connects: the admin client, and the state topic with a partition
// per slot.
func (e *eos) start(ctx context.Context, p RelayParams) error {
	e.startMu.Lock()
	defer e.startMu.Unlock()
	if e.ready {
		return nil
	}
	opts, err := kafka.ClientOpts(p.Brokers(), p.Kafka, e.prefix)
	if err != nil {
		return err
	}
	e.opts = append(opts,
		kgo.RecordPartitioner(statePartitioner{def: kafka.PartitionerOf(p.Kafka)}),
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.TransactionTimeout(txnTimeout),
	)
	admin, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("exactly-once: %w", err)
	}
	adm := kadm.NewClient(admin)
	res, err := adm.CreateTopic(ctx, Slots, -1, map[string]*string{"cleanup.policy": ptr("compact")}, StateTopic)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		admin.Close()
		return fmt.Errorf("exactly-once: create %s: %w", StateTopic, err)
	}
	details, err := adm.ListTopics(ctx, StateTopic)
	if err != nil {
		admin.Close()
		return fmt.Errorf("exactly-once: describe %s: %w", StateTopic, err)
	}
	if n := len(details[StateTopic].Partitions); n != Slots {
		admin.Close()
		return fmt.Errorf("exactly-once: %s has %d partitions, want %d", StateTopic, n, Slots)
	}
	e.admin = admin
	if err := e.startAll(ctx); err != nil {
		e.admin = nil
		admin.Close()
		return err
	}
	e.ready = true
	return nil
}

func ptr(s string) *string { return &s }

// txnTimeout is the transactions' timeout: the broker aborts the open
// transaction of a relay that died and was not followed by another after
// it.
const txnTimeout = 10 * time.Second

// errFenced: another relay started the slot's producer since this one
// did (it drained the slot meanwhile). Nothing of the batch was
// published; the next try starts a producer again and reads the state.
var errFenced = errors.New("exactly-once: the slot's producer was fenced by another relay")

// producer returns slot's producer, starting it when it has none, and
// learns what the slot's last committed transaction published the first
// time it is used.
func (e *eos) producer(ctx context.Context, slot int) (*slotProducer, error) {
	e.mu.Lock()
	sp := e.slots[slot]
	e.mu.Unlock()
	if sp == nil {
		var err error
		if sp, err = e.startProducer(ctx, slot); err != nil {
			return nil, err
		}
	}
	if !sp.known {
		published, err := e.lastPublished(ctx, slot, e.id(slot))
		if err != nil {
			return nil, err
		}
		sp.published, sp.known = published, true
	}
	return sp, nil
}

func (e *eos) id(slot int) string { return e.prefix + "." + strconv.Itoa(slot) }

// startProducer starts slot's transactional producer: an empty, aborted
// transaction initialises its producer ID, which fences the last owner's
// producer and ends the transaction a dead relay left open (until then,
// read_committed consumers of the partitions it wrote to wait).
func (e *eos) startProducer(ctx context.Context, slot int) (*slotProducer, error) {
	id := e.id(slot)
	cl, err := kgo.NewClient(append(e.opts, kgo.TransactionalID(id))...)
	if err != nil {
		return nil, fmt.Errorf("exactly-once: producer %s: %w", id, err)
	}
	if err := cl.BeginTransaction(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("exactly-once: producer %s: %w", id, err)
	}
	probe := &kgo.Record{Topic: StateTopic, Partition: int32(slot), Key: []byte(id), Value: []byte("probe")}
	perr := cl.ProduceSync(ctx, probe).FirstErr()
	if err := errors.Join(perr, cl.EndTransaction(ctx, kgo.TryAbort)); err != nil {
		cl.Close()
		return nil, fmt.Errorf("exactly-once: start producer %s: %w", id, err)
	}
	sp := &slotProducer{cl: cl}
	e.mu.Lock()
	if old := e.slots[slot]; old != nil {
		old.cl.Close()
	}
	e.slots[slot] = sp
	e.mu.Unlock()
	return sp, nil
}

// startAll starts the producer of every slot at once, so that what dead
// relays left open is ended now, not when each slot next has rows.
func (e *eos) startAll(ctx context.Context) error {
	errs := make([]error, Slots)
	var wg sync.WaitGroup
	for slot := range Slots {
		wg.Go(func() { _, errs[slot] = e.startProducer(ctx, slot) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drop closes slot's producer after a failure whose outcome is unknown:
// the next batch starts a new one and reads the state again.
func (e *eos) drop(slot int) {
	e.mu.Lock()
	sp := e.slots[slot]
	delete(e.slots, slot)
	e.mu.Unlock()
	if sp != nil {
		sp.cl.Close()
	}
}

// lastPublished reads the seqs of the last committed state record of id
// in partition slot (none when there is none): the last records of the
// partition, further back until one is found. It reads up to the
// partition's last stable offset, where every transaction before it has
// ended (startProducer ended the slot's own).
func (e *eos) lastPublished(ctx context.Context, slot int, id string) (map[int64]bool, error) {
	adm := kadm.NewClient(e.admin)
	ends, err := adm.ListCommittedOffsets(ctx, StateTopic)
	if err != nil {
		return nil, fmt.Errorf("exactly-once: end of %s: %w", StateTopic, err)
	}
	end, ok := ends.Lookup(StateTopic, int32(slot))
	if !ok || end.Err != nil {
		return nil, fmt.Errorf("exactly-once: end of %s/%d: %v", StateTopic, slot, end.Err)
	}
	for back := int64(32); ; back *= 8 {
		from := max(end.Offset-back, 0)
		seqs, found, err := e.readState(ctx, slot, id, from, end.Offset)
		if err != nil || found {
			return seqs, err
		}
		if from == 0 {
			return map[int64]bool{}, nil
		}
	}
}

// stateReadTimeout bounds readState: a state that cannot be read in time
// is an error (the batch waits and tries again), never taken for none.
const stateReadTimeout = 30 * time.Second

// readState reads partition slot of StateTopic (read_committed) from
// offset from until it has consumed offset until-1, and returns the seqs
// of the last state record of id committed there. It stops on the
// offsets it consumed, not on a quiet poll: a busy broker may answer a
// fetch late, and a state missed would publish its batch again. Control
// records (transaction markers) are kept, since they hold offsets too:
// the last offset before the last stable one is a marker or a committed
// record, except when another relay's transaction interleaves with an
// aborted one there; then the read times out and the batch is tried
// again later.
func (e *eos) readState(ctx context.Context, slot int, id string, from, until int64) (map[int64]bool, bool, error) {
	if from >= until {
		return nil, false, nil
	}
	cl, err := kgo.NewClient(append(e.opts[:len(e.opts):len(e.opts)],
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{StateTopic: {int32(slot): kgo.NewOffset().At(from)}}),
	)...)
	if err != nil {
		return nil, false, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, stateReadTimeout)
	defer cancel()
	var seqs map[int64]bool
	found := false
	next := from
	var fetchErr error
	for next < until {
		fs := cl.PollFetches(rctx)
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if rctx.Err() != nil {
			return nil, false, fmt.Errorf("exactly-once: read the state of slot %d: reached offset %d of %d in %s (last fetch error: %v)",
				slot, next, until, stateReadTimeout, fetchErr)
		}
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		fs.EachRecord(func(r *kgo.Record) {
			next = max(next, r.Offset+1)
			if r.Attrs.IsControl() || string(r.Key) != id {
				return
			}
			if v, err := parseSeqs(r.Value); err == nil {
				seqs, found = v, true
			}
		})
	}
	return seqs, found, nil
}

// close closes every producer.
func (e *eos) close() {
	e.startMu.Lock()
	defer e.startMu.Unlock()
	e.mu.Lock()
	for slot, sp := range e.slots {
		sp.cl.Close()
		delete(e.slots, slot)
	}
	e.mu.Unlock()
	if e.admin != nil {
		e.admin.Close()
		e.admin, e.ready = nil, false
	}
}

// statePartitioner places state records in their record's partition and
// every other record as eventfx's producer does.
type statePartitioner struct{ def kgo.Partitioner }

func (p statePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == StateTopic {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}

// drainExactlyOnce is drain in exactly-once mode: take the batch (without
// deleting it yet), publish what the slot's last transaction did not,
// with the state record, in one Kafka transaction, then delete.
func (r *Relay) drainExactlyOnce(ctx context.Context, tx batchTx, slot int) (int, error) {
	if err := r.eos.start(ctx, r.params); err != nil {
		return 0, err
	}
	rows, err := tx.peek(ctx, slot, r.cfg.BatchSize)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	sp, err := r.eos.producer(ctx, slot)
	if err != nil {
		return 0, err
	}
	// Rows the slot's last committed transaction published and whose
	// deletion did not commit: delete them first, and alone, so the
	// table never holds rows of two published batches.
	var done []int64
	for _, row := range rows {
		if sp.published[row.seq] {
			done = append(done, row.seq)
		}
	}
	if len(done) > 0 {
		if err := tx.remove(ctx, done); err != nil {
			return 0, err
		}
		if err := tx.commit(ctx); err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		return r.cfg.BatchSize, nil // the slot is due again at once
	}
	fresh := rows
	var aside []asideRow
	if len(fresh) > 0 {
		aside, err = r.publishTxn(ctx, sp, slot, fresh)
		if err != nil {
			return 0, err
		}
	}
	seqs := make([]int64, len(rows))
	for i, row := range rows {
		seqs[i] = row.seq
	}
	if err := tx.remove(ctx, seqs); err != nil {
		return 0, err
	}
	return r.commit(ctx, tx, rows, aside)
}

// publishTxn publishes rows and the state record in one transaction of
// sp. Rows the broker refuses for good abort the transaction, are left
// out of the next and returned; any other failure aborts, drops the
// producer and returns the error.
func (r *Relay) publishTxn(ctx context.Context, sp *slotProducer, slot int, rows []outboxRow) ([]asideRow, error) {
	var aside []asideRow
	for {
		send := rows[:0:0]
		for _, row := range rows {
			if !isAside(aside, row.seq) {
				send = append(send, row)
			}
		}
		refused, err := r.sendTxn(ctx, sp, slot, send)
		if err != nil {
			r.eos.drop(slot)
			r.m.batch(false)
			if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
				return nil, errFenced
			}
			return nil, err
		}
		if len(refused) == 0 {
			return aside, nil // committed
		}
		aside = append(aside, refused...) // each round leaves one out at least
	}
}

func isAside(aside []asideRow, seq int64) bool {
	for _, a := range aside {
		if a.row.seq == seq {
			return true
		}
	}
	return false
}

// sendTxn runs one transaction: the rows (the topic-level refusals set
// aside before), then the state record; commit. Rows refused for good
// abort the transaction and are returned.
func (r *Relay) sendTxn(ctx context.Context, sp *slotProducer, slot int, rows []outboxRow) ([]asideRow, error) {
	var refused []asideRow
	recs := make([]*kgo.Record, 0, len(rows)+1)
	rowOf := make(map[*kgo.Record]outboxRow, len(rows))
	sent := make(map[int64]bool, len(rows))
	for _, row := range rows {
		if reason := r.refusedTopic(row.topic); reason != "" {
			refused = append(refused, asideRow{row: row, reason: reason})
			continue
		}
		m, err := row.message()
		if err != nil {
			return nil, err
		}
		rec := kafka.Record(row.topic, m)
		rowOf[rec] = row
		recs = append(recs, rec)
		sent[row.seq] = true
	}
	if len(refused) > 0 {
		return refused, nil // the caller tries again without them
	}
	if len(recs) == 0 {
		return nil, nil
	}
	id := r.eos.prefix + "." + strconv.Itoa(slot)
	recs = append(recs, &kgo.Record{Topic: StateTopic, Partition: int32(slot), Key: []byte(id), Value: formatSeqs(sent)})
	if err := sp.cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("exactly-once: begin: %w", err)
	}
	results := sp.cl.ProduceSync(ctx, recs...) // in the order of the acknowledgements
	for _, res := range results {
		if row, ok := rowOf[res.Record]; ok && res.Err != nil && permanent(res.Err) {
			refused = append(refused, asideRow{row: row, reason: oneLine(res.Err)})
		}
	}
	if err := results.FirstErr(); err != nil {
		if aerr := sp.cl.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
			return nil, fmt.Errorf("exactly-once: abort: %w", errors.Join(err, aerr))
		}
		if len(refused) > 0 {
			return refused, nil
		}
		return nil, fmt.Errorf("exactly-once: publish: %w", err)
	}
	if err := sp.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return nil, fmt.Errorf("exactly-once: commit: %w", err)
	}
	sp.published = sent
	return nil, nil
}

// formatSeqs is the value of a state record: the seqs, comma-separated.
func formatSeqs(seqs map[int64]bool) []byte {
	var b []byte
	for seq := range seqs {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, seq, 10)
	}
	return b
}

// parseSeqs reads the value of a state record ("probe", a producer's
// start, is not one).
func parseSeqs(v []byte) (map[int64]bool, error) {
	seqs := map[int64]bool{}
	for f := range strings.SplitSeq(string(v), ",") {
		seq, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, err
		}
		seqs[seq] = true
	}
	return seqs, nil
}
