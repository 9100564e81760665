package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

func newPoisonCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "poison",
		Short: "List, group and replay poisoned messages",
		Long: `Messages whose handling finally failed are on the poison topic (poison.topic,
default ` + config.DefaultPoisonTopic + `), with every original header plus the poison headers
(reason, original topic, handler, attempts, time, original partition/offset,
consumer group). "poison list" shows them; "poison stats" groups them by
failure class (original topic, handler and the reason with its numbers, IDs
and quoted values normalised away), each group with a stable ID; "poison
replay" sends them back, all or one group (--group) once its cause is fixed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newPoisonListCmd(g), newPoisonStatsCmd(g), newPoisonReplayCmd(g))
	return cmd
}

// poisonTopicFlag adds --topic; poisonTopic resolves it: the flag when
// given, else poison.topic from the config (default eventfx.poison).
func poisonTopicFlag(cmd *cobra.Command, topic *string) {
	cmd.Flags().StringVar(topic, "topic", config.DefaultPoisonTopic, "poison topic; when not given: poison.topic from --config/EVENTFX_POISON_TOPIC")
}

// groupFlag adds --group; checkGroup checks it.
func groupFlag(cmd *cobra.Command, group *string, what string) {
	cmd.Flags().StringVar(group, "group", "", what+" only the messages of this group (its ID, as poison stats shows)")
}

func checkGroup(group string) error {
	if group == "" {
		return nil
	}
	if err := poison.ValidGroupID(group); err != nil {
		return fmt.Errorf("--group: %w", err)
	}
	return nil
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

// ignoredLedgerRecords prints a status line for each replay ledger record
// that cannot be read, and is ignored.
func ignoredLedgerRecords(status io.Writer) poison.Option {
	return poison.OnBadLedgerRecord(func(topic string, err error) {
		fmt.Fprintf(status, "eventfx: %s: ignored: %v\n", topic, err)
	})
}

// ---- poison list ----

type listOpts struct {
	topic string
	group string
	json  bool
}

func newPoisonListCmd(g *globals) *cobra.Command {
	var o listOpts
	cmd := &cobra.Command{
		Use:   "list [--topic eventfx.poison] [--group ID] [--json]",
		Short: "List the poisoned messages",
		Long: `Reads the poison topic from its start to its current end (it does not wait for
new records) and prints one line per poisoned message:
  <poisoned_at> id=<ID> topic=<original topic> handler=<H> service=<S> attempts=<N> correlation_id=<C> replayed=<bool> poison=<partition>/<offset> group=<G> reason=<reason>
service is the service whose handler poisoned it (eventfx_service; for older
records, the consumer group without its ".<handler>"); replayed says whether
"poison replay" already sent it back (the replay ledger); group is the
message's group ("poison stats"). --group lists one group only.
--json: one JSON object per line with id, topic, handler, reason, attempts,
poisoned_at, correlation_id, and also service, group, key, subscriber, consumer_group,
original_partition, original_offset (-1 when unknown), poison_partition,
poison_offset and replayed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkGroup(o.group); err != nil {
				return err
			}
			c, err := g.connect(cmd.Context(), ignoredLedgerRecords(cmd.ErrOrStderr()))
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
	groupFlag(cmd, &o.group, "list")
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
	Service           string  `json:"service"`
	Group             string  `json:"group"`
	Key               *string `json:"key"`
	Subscriber        string  `json:"subscriber"`
	ConsumerGroup     string  `json:"consumer_group"`
	OriginalPartition int32   `json:"original_partition"`
	OriginalOffset    int64   `json:"original_offset"`
	PoisonPartition   int32   `json:"poison_partition"`
	PoisonOffset      int64   `json:"poison_offset"`
	Replayed          bool    `json:"replayed"`
}

// run prints the records of the poison topic (of the group, with
// --group), then a status line; on an error while reading, it prints the
// records read before it.
func (o listOpts) run(ctx context.Context, c *kafkaConn, out, status io.Writer) error {
	recs, err := c.List(ctx, o.topic)
	shown, replayed := 0, 0
	for _, p := range recs {
		group := p.GroupID()
		if o.group != "" && group != o.group {
			continue
		}
		shown++
		if p.AlreadyReplayed {
			replayed++
		}
		if werr := o.print(out, p, group); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	where := o.topic
	if o.group != "" {
		where = "group " + o.group + " of " + o.topic
	}
	fmt.Fprintf(status, "eventfx: %d poisoned messages on %s, %d of them replayed\n", shown, where, replayed)
	return nil
}

// print writes p, of group, as a text line or, with --json, a JSON object.
func (o listOpts) print(out io.Writer, p poison.Record, group string) error {
	if o.json {
		v := listed{
			ID: p.ID, Topic: p.Topic, Handler: p.Handler, Reason: p.Reason, Attempts: p.Attempts,
			PoisonedAt: poisonedAt(p), CorrelationID: p.CorrelationID, Service: p.Service, Group: group,
			Subscriber: p.Subscriber, ConsumerGroup: p.ConsumerGroup,
			OriginalPartition: p.Partition, OriginalOffset: p.Offset,
			PoisonPartition: p.PoisonPartition, PoisonOffset: p.PoisonOffset, Replayed: p.AlreadyReplayed,
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
		kv("service", p.Service).kv("attempts", strconv.Itoa(p.Attempts)).kv("correlation_id", p.CorrelationID).
		kv("replayed", strconv.FormatBool(p.AlreadyReplayed)).word("poison="+position(p)).
		kv("group", group).kv("reason", p.Reason).writeTo(out)
}

func poisonedAt(p poison.Record) string { return rfc3339(p.PoisonedAt) }

// rfc3339 is t in UTC as RFC 3339 with as many decimals as needed; "" for
// the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func position(p poison.Record) string {
	return poison.LedgerKey(p.PoisonPartition, p.PoisonOffset)
}

// ---- poison replay ----

type replayOpts struct {
	topic   string
	handler string
	group   string
	target  string
	dryRun  bool
	limit   int
	json    bool
}

func newPoisonReplayCmd(g *globals) *cobra.Command {
	var o replayOpts
	cmd := &cobra.Command{
		Use:   "replay [--topic eventfx.poison] [--handler H] [--group ID] [--consumer-group G] [--dry-run] [--limit N] [--json]",
		Short: "Republish poisoned messages to their original topics",
		Long: `Republishes the poisoned messages of the poison topic (read from its start to
its current end) to their original topics, with the same ID, payload, key and
correlation ID and every original header, without the poison headers, and with
eventfx_replayed counting the replays (1 the first time), and with
eventfx_replay_for naming the consumer group that poisoned them
(eventfx_consumer_group). Only that group's handler handles them again: every
other eventfx handler of the topic acknowledges them unhandled, as it handled
them the first time. Consumers that are not eventfx see them as any record. A
record without eventfx_consumer_group is replayed to every consumer, as
before. A handler whose consumer group was renamed since (its service or
kafka.consumer_group) would skip them: replay its records (--handler or
--group) with --consumer-group set to its new group.

Each poison record is replayed once: a record that was replayed is never
replayed again by a later run, whatever filters either run used, and a record
a filter (--handler, --group, --limit) skipped stays available to a later run.
--group replays one group of "poison stats" (with --handler too, a message
must match both): a class of failure, once its cause is fixed.

The replayed records are remembered in the replay ledger, the topic
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
			if err := checkGroup(o.group); err != nil {
				return err
			}
			c, err := g.connect(cmd.Context(), ignoredLedgerRecords(cmd.ErrOrStderr()))
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
	groupFlag(cmd, &o.group, "replay")
	cmd.Flags().StringVar(&o.target, "consumer-group", "", "replay for this consumer group instead of the one that poisoned each message (eventfx_replay_for)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be replayed; write nothing")
	cmd.Flags().IntVar(&o.limit, "limit", 0, "replay at most N messages (0: all)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object with the counts and the messages")
	return cmd
}

// replaySummary is the --json output: what a replay run did
// (poison.ReplaySummary) and the messages it reported.
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
	Group           string `json:"group"`
	PoisonPartition int32  `json:"poison_partition"`
	PoisonOffset    int64  `json:"poison_offset"`
	// Partition and Offset locate the replayed record (action replayed).
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	// Replay is the replay's eventfx_replayed value.
	Replay int    `json:"replay"`
	Error  string `json:"error,omitempty"`
}

// actions names the actions of a replay: in --json, and in text lines.
var actions = map[poison.Action]struct{ json, text string }{
	poison.ActionReplayed:     {"replayed", "replayed"},
	poison.ActionWouldReplay:  {"would_replay", "would replay"},
	poison.ActionFailed:       {"failed", "failed"},
	poison.ActionUnreplayable: {"unreplayable", "unreplayable"},
}

func (o replayOpts) run(ctx context.Context, c *kafkaConn, out, status io.Writer) error {
	msgs := []replayMessage{}
	sum, err := c.Replay(ctx, poison.ReplayOptions{
		Topic: o.topic, Handler: o.handler, Group: o.group, ConsumerGroup: o.target, DryRun: o.dryRun, Limit: o.limit,
		Report: func(r poison.ReplayResult) error { return o.report(out, &msgs, r) },
	})
	_, incomplete := errors.AsType[*poison.IncompleteError](err)
	if err != nil && !incomplete {
		if !errors.Is(err, poison.ErrReadLedger) {
			// Say what was done before the error.
			fmt.Fprintln(status, "eventfx: stopped:", sum)
		}
		return err
	}
	if o.json {
		if werr := writeJSON(out, jsonSummary(sum, msgs)); werr != nil {
			return werr
		}
	} else {
		fmt.Fprintln(out, sum)
	}
	return err // nil, or messages not replayed or not recorded
}

func jsonSummary(s poison.ReplaySummary, msgs []replayMessage) replaySummary {
	return replaySummary{
		DryRun: s.DryRun, Replayed: s.Replayed, Skipped: s.Skipped(),
		AlreadyReplayed: s.AlreadyReplayed, Filtered: s.Filtered, OverLimit: s.OverLimit, Unreplayable: s.Unreplayable,
		Failed: s.Failed, NotRecorded: s.NotRecorded, Messages: msgs,
	}
}

// report prints (or, with --json, collects in msgs) what happened to a
// message.
func (o replayOpts) report(out io.Writer, msgs *[]replayMessage, r poison.ReplayResult) error {
	p, rec := r.Record, r.Replay
	m := replayMessage{
		Action: actions[r.Action].json, ID: p.ID, Topic: p.Topic, Handler: p.Handler, Group: p.GroupID(),
		PoisonPartition: p.PoisonPartition, PoisonOffset: p.PoisonOffset, Replay: p.Replayed + 1,
	}
	if rec != nil {
		m.Partition, m.Offset = &rec.Partition, &rec.Offset
	}
	if r.Err != nil {
		m.Error = meta.OneLine(r.Err.Error())
	}
	if o.json {
		*msgs = append(*msgs, m)
		return nil
	}
	l := new(line).word(actions[r.Action].text).kv("id", m.ID).kv("topic", m.Topic).kv("handler", m.Handler).
		word("poison=" + position(p))
	if rec != nil {
		l.kv("partition", strconv.Itoa(int(rec.Partition))).kv("offset", strconv.FormatInt(rec.Offset, 10))
	}
	if r.Action != poison.ActionUnreplayable {
		l.kv("replay", strconv.Itoa(m.Replay))
	}
	if m.Error != "" {
		l.kv("error", m.Error)
	}
	return l.writeTo(out)
}
