package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/meta"
)

// Publisher is what the relay publishes with: app.Publisher's batch
// publish, which returns once the broker acknowledged every message, or
// an error (an *app.PublishError naming the messages not written).
type Publisher interface {
	PublishMessages(ctx context.Context, topic string, msgs ...*message.Message) error
}

// RelayParams are what a relay needs.
type RelayParams struct {
	// Config is the outbox block (defaults applied by NewRelay).
	Config config.Outbox
	// Publisher publishes the rows (required, unless Config.ExactlyOnce).
	Publisher Publisher
	// PoisonTopic is refused as a destination: rows for it are set aside.
	// Empty: config.DefaultPoisonTopic.
	PoisonTopic string
	// Logger logs failures and backoffs; nil: slog.Default().
	Logger *slog.Logger

	// With Config.ExactlyOnce, the relay publishes with transactional
	// producers of its own, on Brokers (asked at Run) with the settings
	// of Kafka, their transactional IDs TransactionalPrefix + "." + slot
	// (the service's name: "<service>.outbox").
	Kafka               config.Kafka
	Brokers             func() []string
	TransactionalPrefix string
}

// Relay publishes the outbox's committed rows: per slot, in seq order, a
// batch at a time in a transaction that holds the slot's advisory lock,
// deletes the rows and commits once the broker acknowledged them. A relay
// that dies mid-batch (kill -9, a lost connection) leaves its batch in
// the table, to be published again by the next one (at-least-once; the
// consumer recognises the repeats by their IDs). Relays in several
// processes share the slots: each takes the slots no other holds.
//
// A row the broker refuses for a permanent reason (too large, topic
// refused or invalid, the poison topic) moves to eventfx_outbox_aside
// with the reason and the rest goes on; a transient failure (broker down)
// rolls the batch back, and the relay tries again with backoff, as it
// does while the database is down.
type Relay struct {
	o      *Outbox
	cfg    config.Outbox
	pub    Publisher
	poison string
	log    *slog.Logger
	m      *Metrics
	sched  scheduler
	params RelayParams
	eos    *eos // exactly-once mode
}

// NewRelay returns a relay of o's table. Run starts it.
func NewRelay(o *Outbox, p RelayParams) (*Relay, error) {
	r := &Relay{o: o, cfg: p.Config.WithDefaults(), pub: p.Publisher, poison: p.PoisonTopic, log: p.Logger, m: o.metrics, params: p}
	if r.cfg.ExactlyOnce {
		e, err := newEOS(p)
		if err != nil {
			return nil, err
		}
		r.eos = e
	}
	if r.poison == "" {
		r.poison = config.DefaultPoisonTopic
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if o.st.dialect() == "sqlite" {
		// A batch holds SQLite's one writer from its rows to its commit:
		// more workers would only wait for it.
		r.cfg.Workers = 1
	}
	r.sched.ready = make(chan struct{}, 1)
	return r, nil
}

// Run relays until ctx ends, then lets the batches in flight finish (their
// publish and commit, bounded by a timeout) and returns nil. It returns
// an error only for a wiring mistake (no publisher).
func (r *Relay) Run(ctx context.Context) error {
	if r.pub == nil && r.eos == nil {
		return errors.New("outbox relay: no publisher")
	}
	if r.eos != nil {
		defer r.eos.close()
	}
	var wg sync.WaitGroup
	r.sched.mark(allSlots)
	for range r.cfg.Workers {
		wg.Go(func() { r.work(ctx) })
	}
	wg.Go(func() { r.poll(ctx) })
	wg.Go(func() { r.followWrites(ctx) })
	if r.o.notify {
		wg.Go(func() { r.listen(ctx) })
	}
	wg.Wait()
	return nil
}

const allSlots = ^uint64(0)

// poll marks every slot due each poll interval, and the slots of commits
// made through Tx at once.
func (r *Relay) poll(ctx context.Context) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sched.mark(allSlots)
		case <-r.o.wake:
			r.sched.mark(r.o.committed.Swap(0))
		}
	}
}

// followUps are when the relay looks again at the slots of a Publish in a
// transaction it does not see commit.
var followUps = []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond}

// followWrites marks due the slots Publish wrote to outside Tx, a few
// times in the moments after (the commit comes later), until the poll
// takes over.
func (r *Relay) followWrites(ctx context.Context) {
	type check struct {
		at    time.Time
		slots uint64
	}
	var pending []check
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if len(pending) > 0 {
			timer.Reset(time.Until(pending[0].at))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.o.soon:
			slots := r.o.written.Swap(0)
			now := time.Now()
			for _, d := range followUps {
				pending = append(pending, check{at: now.Add(d), slots: slots})
			}
			slices.SortFunc(pending, func(a, b check) int { return a.at.Compare(b.at) })
		case <-timer.C:
			now := time.Now()
			var due uint64
			for len(pending) > 0 && !pending[0].at.After(now) {
				due |= pending[0].slots
				pending = pending[1:]
			}
			r.sched.mark(due)
		}
		// Merge checks of the same moment, so a busy writer keeps the
		// list short.
		if len(pending) > 4*len(followUps) {
			merged := pending[:0]
			for _, c := range pending {
				if n := len(merged); n > 0 && c.at.Sub(merged[n-1].at) < time.Millisecond {
					merged[n-1].slots |= c.slots
					continue
				}
				merged = append(merged, c)
			}
			pending = merged
		}
	}
}

// listen marks slots due when a NOTIFY of another process announces a
// commit; it reconnects with backoff while the database is down.
func (r *Relay) listen(ctx context.Context) {
	b := backoff{max: r.cfg.MaxBackoff}
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, &b)
		if ctx.Err() != nil {
			return
		}
		d := b.next()
		r.log.Warn("outbox relay: listen for notifications; retrying", "error", err, "backoff", d)
		sleep(ctx, d)
	}
}

func (r *Relay) listenOnce(ctx context.Context, b *backoff) error {
	conn, err := r.o.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	defer func() {
		// The connection returns to the pool: stop listening on it.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "UNLISTEN "+notifyChannel)
	}()
	// Commits made while it was not listening: look at every slot.
	r.sched.mark(allSlots)
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		b.reset()
		mask, err := strconv.ParseUint(n.Payload, 16, 64)
		if err != nil || mask == 0 {
			mask = allSlots
		}
		r.sched.mark(mask)
	}
}

// work drains due slots until ctx ends.
func (r *Relay) work(ctx context.Context) {
	b := backoff{max: r.cfg.MaxBackoff}
	for {
		slot, ok := r.sched.take()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-r.sched.ready:
				continue
			}
		}
		if ctx.Err() != nil {
			r.sched.done(slot, true)
			return
		}
		n, err := r.drain(ctx, slot)
		if errors.Is(err, errFenced) {
			r.log.Debug("outbox relay: slot taken over and back", "slot", slot)
			r.sched.done(slot, true)
			continue
		}
		if err != nil {
			r.sched.done(slot, true)
			d := b.next()
			r.log.Warn("outbox relay: batch failed; retrying", "slot", slot, "error", err, "backoff", d)
			sleep(ctx, d)
			continue
		}
		b.reset()
		// A full batch: more may be waiting.
		r.sched.done(slot, n == r.cfg.BatchSize)
	}
}

// stopGrace bounds how long a batch in flight at stop may take to be
// acknowledged and committed.
const stopGrace = 10 * time.Second

// outboxRow is a row taken from the table.
type outboxRow struct {
	seq     int64
	id      string
	topic   string
	key     *string
	slot    int16
	payload []byte
	headers []byte
	created time.Time
}

// drain publishes one batch of slot and returns its size: 0 when the slot
// is empty or another relay holds it.
func (r *Relay) drain(ctx context.Context, slot int) (int, error) {
	// Once taken, a batch is seen through: stopping mid-way would only
	// publish it again later.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace+r.cfg.MaxBackoff)
	defer cancel()
	tx, err := r.o.st.begin(work)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(work)) }()
	if r.eos != nil {
		return r.drainExactlyOnce(work, tx, slot)
	}
	rows, err := tx.take(work, slot, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, tx.commit(work)
	}
	aside, err := r.publish(work, rows)
	if err != nil {
		r.m.batch(false)
		return 0, err
	}
	return r.commit(work, tx, rows, aside)
}

// commit ends a batch whose rows were published (or set aside): the
// set-aside rows moved, tx committed, the metrics and the log told. It
// returns how many rows the batch held.
func (r *Relay) commit(ctx context.Context, tx batchTx, rows []outboxRow, aside []asideRow) (int, error) {
	if err := tx.setAside(ctx, aside); err != nil {
		return 0, err
	}
	if err := tx.commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	r.m.batch(true)
	r.m.acked(rows, aside)
	for _, a := range aside {
		r.log.Warn("outbox relay: event set aside", "message_id", a.row.id, "topic", a.row.topic, "reason", a.reason)
	}
	return len(rows), nil
}

// byTopic splits rows by topic, in the order of each topic's first row,
// each in seq order. Most batches have one topic: then rows is the one
// group, not a copy.
func byTopic(rows []outboxRow) [][]outboxRow {
	if len(rows) == 0 {
		return nil
	}
	one := true
	for _, row := range rows[1:] {
		if row.topic != rows[0].topic {
			one = false
			break
		}
	}
	if one {
		return [][]outboxRow{rows}
	}
	var groups [][]outboxRow
	index := map[string]int{}
	for _, row := range rows {
		i, ok := index[row.topic]
		if !ok {
			i = len(groups)
			index[row.topic] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], row)
	}
	return groups
}

// asideRow is a row the broker refused for good, and why.
type asideRow struct {
	row    outboxRow
	reason string
}

// publish sends rows, topic by topic in the order of their first rows,
// each topic's in seq order. It returns the rows refused for good; an
// error when some failed for a reason that may pass (then nothing may be
// deleted: the batch is sent again whole, and keeps its order).
func (r *Relay) publish(ctx context.Context, rows []outboxRow) ([]asideRow, error) {
	var aside []asideRow
	var transient []error // the first of each topic
	failed := 0
	for _, group := range byTopic(rows) {
		topic := group[0].topic
		if reason := r.refusedTopic(topic); reason != "" {
			for _, row := range group {
				aside = append(aside, asideRow{row: row, reason: reason})
			}
			continue
		}
		// A row whose headers do not decode (one written by hand) can
		// never be published: it is set aside, the others go.
		msgs := make([]*message.Message, 0, len(group))
		var sendable []outboxRow // group without those rows, once there is one
		for i, row := range group {
			m, err := row.message()
			if err != nil {
				if sendable == nil {
					sendable = append(make([]outboxRow, 0, len(group)-1), group[:i]...)
				}
				aside = append(aside, asideRow{row: row, reason: oneLine(err)})
				continue
			}
			msgs = append(msgs, m)
			if sendable != nil {
				sendable = append(sendable, row)
			}
		}
		if sendable != nil {
			group = sendable
		}
		if len(msgs) == 0 {
			continue
		}
		err := r.pub.PublishMessages(ctx, topic, msgs...)
		if err == nil {
			continue
		}
		var pe *kafka.PublishError
		if !errors.As(err, &pe) {
			if permanent(err) {
				for _, row := range group {
					aside = append(aside, asideRow{row: row, reason: oneLine(err)})
				}
				continue
			}
			transient = append(transient, err)
			failed += len(group)
			continue
		}
		var first error
		for _, f := range pe.Failed {
			if permanent(f.Err) {
				aside = append(aside, asideRow{row: group[f.Index], reason: oneLine(f.Err)})
				continue
			}
			failed++
			if first == nil {
				first = fmt.Errorf("%s: %s: %w", topic, f.ID, f.Err)
			}
		}
		if first != nil {
			transient = append(transient, first)
		}
	}
	if len(transient) > 0 {
		return nil, fmt.Errorf("%d of %d event(s) not acknowledged: %w", failed, len(rows), errors.Join(transient...))
	}
	return aside, nil
}

// refusedTopic is why no row may go to topic, or "".
func (r *Relay) refusedTopic(topic string) string {
	if err := config.ValidTopicName(topic); err != nil {
		return err.Error()
	}
	if topic == r.poison {
		return fmt.Sprintf("topic %q is the poison topic", topic)
	}
	return ""
}

// permanent reports a broker's refusal that no retry changes.
func permanent(err error) bool {
	return kafka.TooLarge(err) ||
		errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidTopicException) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.InvalidRecord) ||
		errors.Is(err, kerr.PolicyViolation)
}

// oneLine is err's text for the reason column.
func oneLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// message is the row as the message it was written from.
func (o outboxRow) message() (*message.Message, error) {
	md, err := decodeHeaders(o.headers)
	if err != nil {
		return nil, fmt.Errorf("outbox row %d (%s): headers: %w", o.seq, o.id, err)
	}
	if md == nil {
		md = message.Metadata{}
	}
	m := message.NewMessage(o.id, o.payload)
	m.Metadata = md
	if o.key != nil {
		m.Metadata.Set(meta.Key, *o.key)
	}
	return m, nil
}

// scheduler hands due slots to workers, one worker per slot at a time.
type scheduler struct {
	mu         sync.Mutex
	due, busy  uint64
	next       int
	ready      chan struct{}
	randomised bool
}

// mark makes slots due.
func (s *scheduler) mark(slots uint64) {
	if slots == 0 {
		return
	}
	s.mu.Lock()
	s.due |= slots
	s.mu.Unlock()
	signal(s.ready)
}

// take returns a due slot no worker drains, starting after the last one
// taken (relays start at a random slot, so two do not contend from the
// first).
func (s *scheduler) take() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.randomised {
		s.next, s.randomised = rand.IntN(Slots), true
	}
	avail := s.due &^ s.busy
	if avail == 0 {
		return 0, false
	}
	slot := (s.next + bits.TrailingZeros64(bits.RotateLeft64(avail, -s.next))) % Slots
	s.next = (slot + 1) % Slots
	s.due &^= 1 << slot
	s.busy |= 1 << slot
	if s.due&^s.busy != 0 {
		signal(s.ready) // more for another worker
	}
	return slot, true
}

// done releases slot; again makes it due again.
func (s *scheduler) done(slot int, again bool) {
	s.mu.Lock()
	s.busy &^= 1 << slot
	if again {
		s.due |= 1 << slot
	}
	pending := s.due != 0
	s.mu.Unlock()
	if pending {
		signal(s.ready)
	}
}

// backoff is an exponential backoff from 50ms to max, with jitter.
type backoff struct {
	max time.Duration
	cur time.Duration
}

func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, 50*time.Millisecond), b.max)
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
