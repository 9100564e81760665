package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/internal/poison"
)

// ---- poison stats ----

type statsOpts struct {
	topic string
	json  bool
}

func newPoisonStatsCmd(g *globals) *cobra.Command {
	var o statsOpts
	cmd := &cobra.Command{
		Use:   "stats [--topic eventfx.poison] [--json]",
		Short: "Group the poisoned messages by failure class",
		Long: `Reads the poison topic from its start to its current end and groups the
poisoned messages by original topic, handler and fingerprint of the reason:
the reason with numbers, durations, UUIDs, hexadecimal and other IDs, e-mail
addresses and quoted values (key="value", 'x') replaced by placeholders
(<num>, <dur>, <uuid>, <hex>, <id>, <email>, <str>), so that "order 1234
failed: timeout after 30s" and "order 98 failed: timeout after 5s" are one
group, "order <num> failed: timeout after <dur>". Other quoted text is kept
(numbers and IDs in it replaced): it often names the cause.

Prints a table, the most numerous group first:
  GROUP  COUNT  REPLAYED  FIRST SEEN  LAST SEEN  SERVICE  TOPIC  HANDLER  REASON
GROUP is the group's ID: stable, the same in every run and version, for
"poison list --group ID" (the group's messages, with their reasons as they
are) and "poison replay --group ID" (replay the group once its cause is
fixed). REPLAYED counts the messages of the group already replayed; the
times are when messages were poisoned (eventfx_poisoned_at, else the poison
record's time), RFC 3339, UTC; SERVICE is the service whose handler poisoned
them (eventfx_service; for older records, the consumer group without its
".<handler>"), several joined by "," when same-named handlers of several
services fail the same way: they are one group, whose ID does not depend on
the service; REASON is the fingerprint.

--json: one JSON array of objects with group, service, topic, handler, reason (the
fingerprint), example (one reason as it is: the last seen), count, replayed,
first_seen and last_seen (RFC 3339; "" when unknown).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON array of groups")
	return cmd
}

// statsGroup is the --json form of a group (the CLI contract in docs/cli.md: "group", "topic",
// "handler", "reason", "count", "first_seen", "last_seen" at least).
type statsGroup struct {
	Group string `json:"group"`
	// Service is the group's services, joined by ",".
	Service string `json:"service"`
	Topic   string `json:"topic"`
	Handler string `json:"handler"`
	// Reason is the fingerprint; Example one reason of the group as is.
	Reason    string `json:"reason"`
	Example   string `json:"example"`
	Count     int    `json:"count"`
	Replayed  int    `json:"replayed"`
	FirstSeen string `json:"first_seen"`
	LastSeen  string `json:"last_seen"`
}

// run prints the groups of the poison topic, then a status line.
func (o statsOpts) run(ctx context.Context, c *kafkaConn, out, status io.Writer) error {
	groups, err := c.Stats(ctx, o.topic)
	if err != nil {
		return err
	}
	if o.json {
		err = writeJSON(out, jsonGroups(groups))
	} else {
		err = printGroups(out, groups)
	}
	if err != nil {
		return err
	}
	msgs, replayed := 0, 0
	for _, gr := range groups {
		msgs += gr.Count
		replayed += gr.AlreadyReplayed
	}
	fmt.Fprintf(status, "eventfx: %d poisoned messages in %d groups on %s, %d of them replayed\n", msgs, len(groups), o.topic, replayed)
	return nil
}

func jsonGroups(groups []poison.Group) []statsGroup {
	out := make([]statsGroup, 0, len(groups)) // [] rather than null when empty
	for _, gr := range groups {
		out = append(out, statsGroup{
			Group: gr.ID, Service: strings.Join(gr.Services, ","), Topic: gr.Topic, Handler: gr.Handler, Reason: gr.Fingerprint, Example: gr.Example,
			Count: gr.Count, Replayed: gr.AlreadyReplayed, FirstSeen: rfc3339(gr.FirstSeen), LastSeen: rfc3339(gr.LastSeen),
		})
	}
	return out
}

// printGroups writes the table of groups; nothing when there is none.
func printGroups(out io.Writer, groups []poison.Group) error {
	if len(groups) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tCOUNT\tREPLAYED\tFIRST SEEN\tLAST SEEN\tSERVICE\tTOPIC\tHANDLER\tREASON")
	for _, gr := range groups {
		fmt.Fprintln(tw, gr.ID+"\t"+strconv.Itoa(gr.Count)+"\t"+strconv.Itoa(gr.AlreadyReplayed)+"\t"+
			cell(rfc3339(gr.FirstSeen))+"\t"+cell(rfc3339(gr.LastSeen))+"\t"+cell(strings.Join(gr.Services, ","))+"\t"+cell(gr.Topic)+"\t"+cell(gr.Handler)+"\t"+cell(gr.Fingerprint))
	}
	return tw.Flush()
}

// cell renders a value for a table cell: "-" when empty; quoted with Go
// escapes when it is not printable (a tab would break the table).
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return payload([]byte(s))
}
