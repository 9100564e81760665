package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/poison"
)

func newPoisonCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "poison",
		Short: "List and replay poisoned messages",
		Long: `Messages whose handling finally failed are on the poison topic (poison.topic,
default ` + config.DefaultPoisonTopic + `), with every original header plus the poison headers
(reason, original topic, handler, attempts, time, original partition/offset,
consumer group). "poison list" shows them; "poison replay" sends them back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newPoisonListCmd(g), newPoisonReplayCmd(g))
	return cmd
}

// poisonTopicFlag adds --topic; poisonTopic resolves it: the flag when
// given, else poison.topic from the config (default eventfx.poison).
func poisonTopicFlag(cmd *cobra.Command, topic *string) {
	cmd.Flags().StringVar(topic, "topic", config.DefaultPoisonTopic, "poison topic; when not given: poison.topic from --config/EVENTFX_POISON_TOPIC")
}

func poisonTopic(cmd *cobra.Command, flag string, cfg config.Config) (string, error) {
	topic := flag
	if !cmd.Flags().Changed("topic") && cfg.Poison.Topic != "" {
		topic = cfg.Poison.Topic
	}
	if err := config.ValidTopicName(topic); err != nil {
		return "", fmt.Errorf("--topic: %w", err)
	}
	return topic, nil
}

// readLedger reads the replay ledger of poisonTopic.
func readLedger(ctx context.Context, c *kafkaConn, poisonTopic string, status io.Writer) (*poison.Ledger, error) {
	l := poison.NewLedger()
	topic := poison.LedgerTopic(poisonTopic)
	err := c.readToEnd(ctx, topic, func(r *kgo.Record) error {
		e, err := poison.ParseEntry(r)
		if err != nil {
			fmt.Fprintf(status, "eventfx: %s: ignored: %v\n", topic, err)
			return nil
		}
		l.Add(e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read replay ledger: %w", err)
	}
	return l, nil
}

// ensureLedger creates the ledger topic if it does not exist, before
// anything is replayed: a broker that does not create topics on first use
// must not let a run replay messages it cannot record. The topic is
// compacted, so that retention never forgets an entry (keys are unique:
// compaction removes nothing).
func (c *kafkaConn) ensureLedger(ctx context.Context, topic string) error {
	ends, err := c.endOffsets(ctx, topic)
	if err != nil || ends != nil {
		return err
	}
	compact := "compact"
	_, err = kadm.NewClient(c.admin).CreateTopic(ctx, -1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create the replay ledger %s (nothing was replayed): %w", topic, err)
	}
	return nil
}

// ---- poison list ----

type listOpts struct {
	topic string
	json  bool
}

func newPoisonListCmd(g *globals) *cobra.Command {
	var o listOpts
	cmd := &cobra.Command{
		Use:   "list [--topic eventfx.poison] [--json]",
		Short: "List the poisoned messages",
		Long: `Reads the poison topic from its start to its current end (it does not wait for
new records) and prints one line per poisoned message:
  <poisoned_at> id=<ID> topic=<original topic> handler=<H> attempts=<N> correlation_id=<C> replayed=<bool> poison=<partition>/<offset> reason=<reason>
replayed says whether "poison replay" already sent it back (the replay ledger).
--json: one JSON object per line with id, topic, handler, reason, attempts,
poisoned_at, correlation_id, and also key, subscriber, consumer_group,
original_partition, original_offset (-1 when unknown), poison_partition,
poison_offset and replayed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if o.topic, err = poisonTopic(cmd, o.topic, c.cfg); err != nil {
				return err
			}
			return o.run(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	poisonTopicFlag(cmd, &o.topic)
	cmd.Flags().BoolVar(&o.json, "json", false, "one JSON object per line")
	return cmd
}

// listed is the --json form of a poisoned message.
type listed struct {
	ID                string  `json:"id"`
	Topic             string  `json:"topic"`
	Handler           string  `json:"handler"`
	Reason            string  `json:"reason"`
	Attempts          int     `json:"attempts"`
	PoisonedAt        string  `json:"poisoned_at"`
	CorrelationID     string  `json:"correlation_id"`
	Key               *string `json:"key"`
	Subscriber        string  `json:"subscriber"`
	ConsumerGroup     string  `json:"consumer_group"`
	OriginalPartition int32   `json:"original_partition"`
	OriginalOffset    int64   `json:"original_offset"`
	PoisonPartition   int32   `json:"poison_partition"`
	PoisonOffset      int64   `json:"poison_offset"`
	Replayed          bool    `json:"replayed"`
}

func (o listOpts) run(ctx context.Context, c *kafkaConn, out, status io.Writer) error {
	ledger, err := readLedger(ctx, c, o.topic, status)
	if err != nil {
		return err
	}
	n, replayed := 0, 0
	err = c.readToEnd(ctx, o.topic, func(r *kgo.Record) error {
		p := poison.Parse(r)
		done := ledger.Has(p)
		n++
		if done {
			replayed++
		}
		if o.json {
			v := listed{
				ID: p.ID, Topic: p.Topic, Handler: p.Handler, Reason: p.Reason, Attempts: p.Attempts,
				PoisonedAt: poisonedAt(p), CorrelationID: p.CorrelationID,
				Subscriber: p.Subscriber, ConsumerGroup: p.ConsumerGroup,
				OriginalPartition: p.Partition, OriginalOffset: p.Offset,
				PoisonPartition: p.PoisonPartition, PoisonOffset: p.PoisonOffset, Replayed: done,
			}
			if p.Key != nil {
				k := string(p.Key)
				v.Key = &k
			}
			return writeJSON(out, v)
		}
		at := poisonedAt(p)
		if at == "" {
			at = "-"
		}
		return new(line).word(at).kv("id", p.ID).kv("topic", p.Topic).kv("handler", p.Handler).
			kv("attempts", strconv.Itoa(p.Attempts)).kv("correlation_id", p.CorrelationID).
			kv("replayed", strconv.FormatBool(done)).word("poison="+position(p)).
			kv("reason", p.Reason).writeTo(out)
	})
	if err != nil {
		return fmt.Errorf("read poison topic: %w", err)
	}
	fmt.Fprintf(status, "eventfx: %d poisoned messages on %s, %d of them replayed\n", n, o.topic, replayed)
	return nil
}

func poisonedAt(p poison.Record) string {
	if p.PoisonedAt.IsZero() {
		return ""
	}
	return p.PoisonedAt.UTC().Format(time.RFC3339Nano)
}

func position(p poison.Record) string {
	return poison.LedgerKey(p.PoisonPartition, p.PoisonOffset)
}

// ---- poison replay ----

type replayOpts struct {
	topic   string
	handler string
	dryRun  bool
	limit   int
	json    bool
}

// replayBatch is how many messages are republished at once (then their
// ledger entries at once).
const replayBatch = 100

func newPoisonReplayCmd(g *globals) *cobra.Command {
	var o replayOpts
	cmd := &cobra.Command{
		Use:   "replay [--topic eventfx.poison] [--handler H] [--dry-run] [--limit N]",
		Short: "Republish poisoned messages to their original topics",
		Long: `Republishes the poisoned messages of the poison topic (read from its start to
its current end) to their original topics, with the same ID, payload, key and
correlation ID and every original header, without the poison headers, and with
eventfx_replayed counting the replays (1 the first time). The original handler's
consumer group then delivers them again.

Each poison record is replayed once: a record that was replayed is never
replayed again by a later run, whatever filters either run used, and a record
a filter (--handler, --limit) skipped stays available to a later run. The
replayed records are remembered in the replay ledger, the topic
"<poison topic>.replayed" (one record per replayed poison record, keyed
"<partition>/<offset>"), read in full before replaying. The first replay
creates it, compacted so that retention never drops an entry.

A message is republished (acknowledged by all in-sync replicas) before its
ledger entry is written: if the run dies between the two, a later run replays
it again, so a message may be delivered twice but is never lost. Do not run
two replays of the same poison topic at once.

Prints a line per message (replayed, would replay, failed, unreplayable), then
  replayed N, skipped M (already replayed A, filtered F), failed E
(with "over limit" and "unreplayable" counts when not zero). --json prints
one JSON object instead, with the counts and the messages. The exit code is
not 0 when a message could not be replayed or recorded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.limit < 0 {
				return errors.New("--limit must not be negative")
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if o.topic, err = poisonTopic(cmd, o.topic, c.cfg); err != nil {
				return err
			}
			return o.run(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	poisonTopicFlag(cmd, &o.topic)
	cmd.Flags().StringVar(&o.handler, "handler", "", "replay only the messages this handler poisoned (handler_poisoned)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be replayed; write nothing")
	cmd.Flags().IntVar(&o.limit, "limit", 0, "replay at most N messages (0: all)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object with the counts and the messages")
	return cmd
}

// replaySummary is what a replay run did; it is also the --json output.
type replaySummary struct {
	DryRun bool `json:"dry_run"`
	// Replayed counts the messages replayed (with --dry-run: that would be).
	Replayed int `json:"replayed"`
	// Skipped is the sum of the four next counts.
	Skipped         int `json:"skipped"`
	AlreadyReplayed int `json:"already_replayed"`
	Filtered        int `json:"filtered"`
	OverLimit       int `json:"over_limit"`
	Unreplayable    int `json:"unreplayable"`
	// Failed counts messages that could not be republished.
	Failed int `json:"failed"`
	// NotRecorded counts replayed messages whose ledger entry could not be
	// written: a later run replays them again.
	NotRecorded int             `json:"not_recorded"`
	Messages    []replayMessage `json:"messages"`
}

// replayMessage is one message a run replayed, would replay, could not
// replay, or found unreplayable.
type replayMessage struct {
	Action          string `json:"action"` // replayed, would_replay, failed, unreplayable
	ID              string `json:"id"`
	Topic           string `json:"topic"`
	Handler         string `json:"handler"`
	PoisonPartition int32  `json:"poison_partition"`
	PoisonOffset    int64  `json:"poison_offset"`
	// Partition and Offset locate the replayed record (action replayed).
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	// Replay is the replay's eventfx_replayed value.
	Replay int    `json:"replay"`
	Error  string `json:"error,omitempty"`
}

func (s replaySummary) String() string {
	verb := "replayed"
	if s.DryRun {
		verb = "would replay"
	}
	out := fmt.Sprintf("%s %d, skipped %d (already replayed %d, filtered %d", verb, s.Replayed, s.Skipped, s.AlreadyReplayed, s.Filtered)
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

type replayer struct {
	replayOpts
	c           *kafkaConn
	ledgerReady bool
	prod        *kgo.Client
	ledger      *poison.Ledger
	out         io.Writer
	sum         replaySummary
	pending     []poison.Record
}

func (o replayOpts) run(ctx context.Context, c *kafkaConn, out, status io.Writer) error {
	ledger, err := readLedger(ctx, c, o.topic, status)
	if err != nil {
		return err
	}
	r := &replayer{replayOpts: o, c: c, ledger: ledger, out: out, sum: replaySummary{DryRun: o.dryRun, Messages: []replayMessage{}}}
	if !o.dryRun {
		if r.prod, err = c.producer(); err != nil {
			return err
		}
		defer r.prod.Close()
	}
	err = c.readToEnd(ctx, o.topic, func(rec *kgo.Record) error {
		if err := r.consider(poison.Parse(rec)); err != nil {
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
		// Say what was done before the error.
		fmt.Fprintln(status, "eventfx: stopped:", r.sum)
		return err
	}
	if o.json {
		if err := writeJSON(out, r.sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out, r.sum)
	}
	if r.sum.Failed > 0 || r.sum.NotRecorded > 0 {
		return fmt.Errorf("%d messages not replayed, %d replayed but not recorded", r.sum.Failed, r.sum.NotRecorded)
	}
	return nil
}

// consider decides what to do with poison record p: skip it (with a
// reason) or queue it for replay.
func (r *replayer) consider(p poison.Record) error {
	switch {
	case r.ledger.Has(p):
		r.sum.AlreadyReplayed++
	case r.handler != "" && p.Handler != r.handler:
		r.sum.Filtered++
	case p.Replayable() != nil:
		r.sum.Unreplayable++
		r.sum.Skipped++
		return r.report(p, "unreplayable", nil, p.Replayable())
	case r.limit > 0 && r.sum.Replayed+r.sum.Failed+len(r.pending) >= r.limit:
		r.sum.OverLimit++
	default:
		r.pending = append(r.pending, p)
		return nil
	}
	r.sum.Skipped++
	return nil
}

// flush replays the pending records: republish them all (acks=all), then
// write the ledger entries of those acknowledged. The ledger writes are not
// cancelled by Ctrl-C, so that a replayed record gets its entry.
func (r *replayer) flush(ctx context.Context) error {
	batch := r.pending
	r.pending = nil
	if len(batch) == 0 {
		return nil
	}
	if r.dryRun {
		for _, p := range batch {
			r.sum.Replayed++
			if err := r.report(p, "would_replay", nil, nil); err != nil {
				return err
			}
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !r.ledgerReady {
		if err := r.c.ensureLedger(ctx, poison.LedgerTopic(r.topic)); err != nil {
			return err
		}
		r.ledgerReady = true
	}
	recs := make([]*kgo.Record, len(batch))
	for i, p := range batch {
		rec, err := p.ReplayRecord()
		if err != nil {
			return err // Replayable was checked: cannot happen
		}
		recs[i] = rec
	}
	results := r.prod.ProduceSync(ctx, recs...)
	ledgerTopic := poison.LedgerTopic(r.topic)
	var entries []*kgo.Record
	var replayed []int
	for i, res := range results {
		if res.Err != nil {
			r.sum.Failed++
			if err := r.report(batch[i], "failed", nil, res.Err); err != nil {
				return err
			}
			continue
		}
		entries = append(entries, poison.NewEntry(batch[i], res.Record, time.Now()).Record(ledgerTopic))
		replayed = append(replayed, i)
	}
	if len(entries) == 0 {
		return ctx.Err()
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout)
	defer cancel()
	lres := r.prod.ProduceSync(lctx, entries...)
	for j, i := range replayed {
		r.sum.Replayed++
		var err error
		if lerr := lres[j].Err; lerr != nil {
			r.sum.NotRecorded++
			err = fmt.Errorf("replayed, but its ledger entry was not written (a later run replays it again): %w", lerr)
		}
		if rerr := r.report(batch[i], "replayed", results[i].Record, err); rerr != nil {
			return rerr
		}
	}
	return ctx.Err()
}

// report prints (or, with --json, collects) what happened to p.
func (r *replayer) report(p poison.Record, action string, rec *kgo.Record, err error) error {
	m := replayMessage{
		Action: action, ID: p.ID, Topic: p.Topic, Handler: p.Handler,
		PoisonPartition: p.PoisonPartition, PoisonOffset: p.PoisonOffset, Replay: p.Replayed + 1,
	}
	if rec != nil {
		m.Partition, m.Offset = &rec.Partition, &rec.Offset
	}
	if err != nil {
		m.Error = oneLine(err.Error())
	}
	if r.json {
		r.sum.Messages = append(r.sum.Messages, m)
		return nil
	}
	verb := map[string]string{"replayed": "replayed", "would_replay": "would replay", "failed": "failed", "unreplayable": "unreplayable"}[action]
	l := new(line).word(verb).kv("id", m.ID).kv("topic", m.Topic).kv("handler", m.Handler).
		word("poison=" + position(p))
	if rec != nil {
		l.kv("partition", strconv.Itoa(int(rec.Partition))).kv("offset", strconv.FormatInt(rec.Offset, 10))
	}
	if action != "unreplayable" {
		l.kv("replay", strconv.Itoa(m.Replay))
	}
	if m.Error != "" {
		l.kv("error", m.Error)
	}
	return l.writeTo(r.out)
}
