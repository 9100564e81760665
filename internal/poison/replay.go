package poison

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
)

// NoLimit is ReplayOptions.Limit's zero value: replay every record.
const NoLimit = 0

// replayBatch is how many records are republished at once (then their
// ledger entries at once).
const replayBatch = 100

// ReplayOptions says what Client.Replay replays.
type ReplayOptions struct {
	// Topic is the poison topic. Required.
	Topic string
	// Handler, when set, restricts the replay to the records this handler
	// poisoned (handler_poisoned); the others are left for a later
	// Replay. Default "": every handler.
	Handler string
	// Group, when set, restricts the replay to the records of this group
	// (Record.GroupID; see Stats); the others are left for a later
	// Replay. With Handler too, a record must match both. Default "":
	// every group. When set, it must be a group ID (ValidGroupID).
	Group string
	// ConsumerGroup, when set, is the consumer group the replayed records
	// are for (eventfx_replay_for), instead of the one that poisoned each
	// (Record.ConsumerGroup): for a handler whose consumer group was
	// renamed since (its service or kafka.consumer_group), which would
	// skip a record for its old group. Use it with Handler or Group, so
	// that it applies to one handler's records. Default "": each record's
	// own group (none for a record that names none: every consumer).
	ConsumerGroup string
	// IDs, when set, restricts the replay to the records whose message ID
	// (Record.ID) is one of them; the others are left for a later Replay.
	// With Handler or Group too, a record must match all. Default nil:
	// every ID.
	IDs []string
	// By says who asked for the replay (a user, a tool); it is written into
	// each ledger entry (Entry.By). Default "": not recorded.
	By string
	// DryRun reports what would be replayed and writes nothing (no
	// republished record, no ledger entry, no ledger topic).
	DryRun bool
	// Limit is the most records to replay (or try to: failures count);
	// those over it are left for a later Replay. Default NoLimit (0): all.
	// It must not be negative.
	Limit int
	// Report, when set, is called from Replay's goroutine with each record
	// Replay replays, would replay (DryRun), fails to replay or finds
	// unreplayable, in the order of the poison topic, except that in each
	// batch of up to 100 records, the failed ones come first. The records
	// it skips (already replayed, filtered, over the limit) are only
	// counted. An error from Report stops Replay, which returns it; the
	// rest of the batch being reported was already handled: counted in the
	// summary and, when replayed, recorded in the ledger. Default nil: no
	// reports.
	Report func(ReplayResult) error
}

// Validate reports every bad field of o.
func (o ReplayOptions) Validate() error {
	var errs []error
	if err := config.ValidTopicName(o.Topic); err != nil {
		errs = append(errs, fmt.Errorf("Topic: %w", err))
	}
	if o.Group != "" {
		if err := ValidGroupID(o.Group); err != nil {
			errs = append(errs, fmt.Errorf("Group: %w", err))
		}
	}
	if o.Limit < 0 {
		errs = append(errs, fmt.Errorf("Limit: %d is negative", o.Limit))
	}
	return errors.Join(errs...)
}

// Action is what Replay did with a poison record it reports.
type Action int

const (
	// ActionReplayed: republished (acknowledged by all in-sync replicas).
	// With a ReplayResult.Err, its ledger entry could not be written, so a
	// later Replay replays it again.
	ActionReplayed Action = iota + 1
	// ActionWouldReplay: a dry run would have replayed it.
	ActionWouldReplay
	// ActionFailed: it could not be republished (ReplayResult.Err says
	// why); a later Replay tries again.
	ActionFailed
	// ActionUnreplayable: it names no valid original topic
	// (Record.Replayable); no Replay ever replays it.
	ActionUnreplayable
)

func (a Action) String() string {
	switch a {
	case ActionReplayed:
		return "replayed"
	case ActionWouldReplay:
		return "would replay"
	case ActionFailed:
		return "failed"
	case ActionUnreplayable:
		return "unreplayable"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// ReplayResult is what Replay did with one poison record; see
// ReplayOptions.Report.
type ReplayResult struct {
	Action Action
	// Record is the poison record.
	Record Record
	// Replay is the republished record, with its partition and offset, for
	// ActionReplayed; nil otherwise.
	Replay *kgo.Record
	// Err says why the record failed or is unreplayable, or (with
	// ActionReplayed) why its ledger entry was not written; nil otherwise.
	Err error
}

// ReplaySummary counts what a Replay did. Each record of the poison topic
// is counted once: Replayed, Failed, or one of the skipped counts.
type ReplaySummary struct {
	// DryRun is ReplayOptions.DryRun: Replayed then counts the records
	// that would be replayed.
	DryRun bool
	// Replayed counts the records republished (NotRecorded of them without
	// a ledger entry).
	Replayed int
	// AlreadyReplayed counts the records skipped because the ledger names
	// them.
	AlreadyReplayed int
	// Filtered counts the records skipped because another handler
	// poisoned them (ReplayOptions.Handler), they are of another group
	// (ReplayOptions.Group) or their ID is not asked for
	// (ReplayOptions.IDs).
	Filtered int
	// OverLimit counts the records skipped because of ReplayOptions.Limit.
	OverLimit int
	// Unreplayable counts the records skipped because they cannot be
	// replayed (Record.Replayable).
	Unreplayable int
	// Failed counts the records that could not be republished.
	Failed int
	// NotRecorded counts replayed records whose ledger entry could not be
	// written: a later Replay replays them again.
	NotRecorded int
}

// Skipped is the number of records not replayed on purpose: already
// replayed, filtered, over the limit or unreplayable.
func (s ReplaySummary) Skipped() int {
	return s.AlreadyReplayed + s.Filtered + s.OverLimit + s.Unreplayable
}

// String is the summary as `eventfx poison replay` prints it, e.g.
// "replayed 3, skipped 2 (already replayed 1, filtered 1), failed 0"; the
// over limit, unreplayable and not recorded counts appear when not zero.
func (s ReplaySummary) String() string {
	verb := "replayed"
	if s.DryRun {
		verb = "would replay"
	}
	out := fmt.Sprintf("%s %d, skipped %d (already replayed %d, filtered %d", verb, s.Replayed, s.Skipped(), s.AlreadyReplayed, s.Filtered)
	if s.OverLimit > 0 {
		out += fmt.Sprintf(", over limit %d", s.OverLimit)
	}
	if s.Unreplayable > 0 {
		out += fmt.Sprintf(", unreplayable %d", s.Unreplayable)
	}
	out += fmt.Sprintf("), failed %d", s.Failed)
	if s.NotRecorded > 0 {
		out += fmt.Sprintf(", not recorded %d (replayed, but a later run replays them again: the ledger write failed)", s.NotRecorded)
	}
	if s.DryRun {
		out += " (dry run: nothing written)"
	}
	return out
}

// IncompleteError is Replay's error when it went through the whole poison
// topic but some records could not be republished (Failed) or had no
// ledger entry written (NotRecorded). A later Replay tries them again.
type IncompleteError struct {
	Failed, NotRecorded int
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("%d messages not replayed, %d replayed but not recorded", e.Failed, e.NotRecorded)
}

// Replay republishes the records of the poison topic, read from its start
// to the end it had when Replay began, to their original topics with
// Record.ReplayRecord, skipping those the replay ledger names and those
// the options filter out, which stay available to a later Replay.
//
// It reads the whole ledger first. Then, batch by batch, it republishes the
// records (acknowledged by all in-sync replicas) and only then writes their
// ledger entries; before its first write, it creates the ledger topic
// (compacted) if it does not exist. So a record is never marked replayed
// without having been replayed, but a failure between the two writes
// leaves it to be replayed again: at least once. Two Replays of the same
// poison topic must not run at once.
//
// The summary counts what was done, also when Replay returns an error. The
// error is an *IncompleteError when Replay went through the whole topic but
// some records failed or were not recorded; it wraps ErrReadLedger when
// Replay could not read the ledger, and did nothing; otherwise it says why
// Replay stopped early: ctx done, a read or ledger error, or Report's
// error. ctx
// cancels the reads and republishing, but not the writing of the ledger
// entries of records already republished (bounded by 30s), so that a
// replayed record gets its entry.
func (c *Client) Replay(ctx context.Context, o ReplayOptions) (ReplaySummary, error) {
	r := &replayer{c: c, o: o, sum: ReplaySummary{DryRun: o.DryRun}}
	if err := o.Validate(); err != nil {
		return r.sum, fmt.Errorf("replay options: %w", err)
	}
	var err error
	if r.ledger, err = c.readLedger(ctx, o.Topic); err != nil {
		return r.sum, err
	}
	if !o.DryRun {
		if r.prod, err = c.NewKafkaClient(kgo.AllowAutoTopicCreation()); err != nil {
			return r.sum, err
		}
		defer r.prod.Close()
	}
	err = c.readToEnd(ctx, o.Topic, func(rec *kgo.Record) error {
		if err := r.consider(Parse(rec)); err != nil {
			return err
		}
		if len(r.pending) >= replayBatch {
			return r.flush(ctx)
		}
		return nil
	})
	if err == nil {
		err = r.flush(ctx)
	}
	if err != nil {
		return r.sum, err
	}
	if r.sum.Failed > 0 || r.sum.NotRecorded > 0 {
		return r.sum, &IncompleteError{Failed: r.sum.Failed, NotRecorded: r.sum.NotRecorded}
	}
	return r.sum, nil
}

// replayer is the state of one Replay.
type replayer struct {
	c           *Client
	o           ReplayOptions
	ledger      *Ledger
	ledgerReady bool
	prod        *kgo.Client // nil on a dry run
	sum         ReplaySummary
	pending     []Record
}

// consider decides what to do with poison record p: skip it (with a
// reason) or queue it for replay.
func (r *replayer) consider(p Record) error {
	switch {
	case r.ledger.Has(p):
		r.sum.AlreadyReplayed++
	case r.o.Handler != "" && p.Handler != r.o.Handler,
		r.o.Group != "" && p.GroupID() != r.o.Group,
		r.o.IDs != nil && !slices.Contains(r.o.IDs, p.ID):
		r.sum.Filtered++
	case p.Replayable() != nil:
		r.sum.Unreplayable++
		return r.report(p, ActionUnreplayable, nil, p.Replayable())
	case r.o.Limit > 0 && r.sum.Replayed+r.sum.Failed+len(r.pending) >= r.o.Limit:
		r.sum.OverLimit++
	default:
		r.pending = append(r.pending, p)
	}
	return nil
}

// flush replays the pending records: republish them all (acks=all), then
// write the ledger entries of those acknowledged. The ledger writes are not
// cancelled with ctx, so that a replayed record gets its entry.
func (r *replayer) flush(ctx context.Context) error {
	batch := r.pending
	r.pending = nil
	if len(batch) == 0 {
		return nil
	}
	if r.o.DryRun {
		for _, p := range batch {
			r.sum.Replayed++
			if err := r.report(p, ActionWouldReplay, nil, nil); err != nil {
				return err
			}
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ledgerTopic := LedgerTopic(r.o.Topic)
	if !r.ledgerReady {
		if err := r.c.ensureLedger(ctx, ledgerTopic); err != nil {
			return err
		}
		r.ledgerReady = true
	}
	recs := make([]*kgo.Record, len(batch))
	for i, p := range batch {
		rec, err := p.replayRecord(cmp.Or(r.o.ConsumerGroup, p.ConsumerGroup))
		if err != nil {
			return err // Replayable was checked: cannot happen
		}
		recs[i] = rec
	}
	// Republish, then write the ledger entries of the records
	// acknowledged. Count and record everything before the first report,
	// so that a Report error stops the run with the summary and the ledger
	// up to date. ProduceSync returns results in the order of their
	// acknowledgements, not of the records given: match them by record.
	acked := make([]*kgo.Record, len(batch)) // nil: not republished
	errs := make([]error, len(batch))
	for _, res := range r.prod.ProduceSync(ctx, recs...) {
		i := slices.Index(recs, res.Record)
		if res.Err != nil {
			r.sum.Failed++
			errs[i] = res.Err
			continue
		}
		acked[i] = res.Record
	}
	var entries []*kgo.Record
	var entryOf []int // entries[j] is batch[entryOf[j]]'s
	for i, rec := range acked {
		if rec != nil {
			e := NewEntry(batch[i], rec, time.Now())
			e.By = r.o.By
			entries = append(entries, e.Record(ledgerTopic))
			entryOf = append(entryOf, i)
		}
	}
	if len(entries) > 0 {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout)
		defer cancel()
		for _, res := range r.prod.ProduceSync(lctx, entries...) {
			r.sum.Replayed++
			if res.Err != nil {
				r.sum.NotRecorded++
				errs[entryOf[slices.Index(entries, res.Record)]] = fmt.Errorf("replayed, but its ledger entry was not written (a later run replays it again): %w", res.Err)
			}
		}
	}
	for i, p := range batch {
		if acked[i] == nil {
			if err := r.report(p, ActionFailed, nil, errs[i]); err != nil {
				return err
			}
		}
	}
	for i, p := range batch {
		if acked[i] != nil {
			if err := r.report(p, ActionReplayed, acked[i], errs[i]); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// report calls ReplayOptions.Report, when set.
func (r *replayer) report(p Record, a Action, rec *kgo.Record, err error) error {
	if r.o.Report == nil {
		return nil
	}
	return r.o.Report(ReplayResult{Action: a, Record: p, Replay: rec, Err: err})
}
