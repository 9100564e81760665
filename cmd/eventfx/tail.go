package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/schema"
)

type tailOpts struct {
	topic         string
	fromBeginning bool
	limit         int
	json          bool
	decode        bool
	registryURL   string
	registry      *schema.Registry // with decode
}

func newTailCmd(g *globals) *cobra.Command {
	var o tailOpts
	cmd := &cobra.Command{
		Use:   "tail --topic T [--from-beginning] [--limit N] [--json]",
		Short: "Print a topic's records as they arrive",
		Long: `Prints the records of --topic, from its current end (or with --from-beginning,
from the start), waiting for new ones until Ctrl-C, or until --limit records
were printed. It reads without a consumer group: it commits nothing and
disturbs no one. Partitions added while it runs are not followed.

Text: one line per record,
  <partition>/<offset> id=<ID> correlation_id=<C> key=<K> <payload>
with the payload quoted (Go escapes) when it is not printable UTF-8 on one line.
--json: one JSON object per line with id, topic, partition, offset, key (null
when none), correlation_id, headers, payload (a string; payload_base64 too when
it is not UTF-8) and timestamp. A record without an ID header shows the stable
ID eventfx gives it, <topic>-<partition>-<offset>.

--decode decodes values in Confluent's Schema Registry wire format with the
schema their ID names (fetched from --schema-registry): the text line ends in
schema_id=<ID> <value as JSON>, the JSON object has schema_id and value (the
decoded JSON) too. A value that does not decode is printed as without
--decode, with decode_error=<why> (decode_error in JSON).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ValidTopicName(o.topic); err != nil {
				return fmt.Errorf("--topic: %w", err)
			}
			if o.limit < 0 {
				return errors.New("--limit must not be negative")
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if o.decode {
				if o.registry, err = openRegistry(o.registryURL, c.cfg); err != nil {
					return err
				}
				defer o.registry.Close()
			}
			return o.run(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.topic, "topic", "", "topic to read (required)")
	cmd.Flags().BoolVar(&o.fromBeginning, "from-beginning", false, "start at the oldest record instead of the end")
	cmd.Flags().IntVar(&o.limit, "limit", 0, "stop after N records (0: until Ctrl-C)")
	cmd.Flags().BoolVar(&o.json, "json", false, "one JSON object per line")
	cmd.Flags().BoolVar(&o.decode, "decode", false, "decode Schema-Registry-framed values (Avro, JSON Schema, Protobuf) to JSON")
	registryFlag(cmd, &o.registryURL)
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func (o tailOpts) run(ctx context.Context, c *kafkaConn, out, status io.Writer) error {
	// Fix "the end" before saying we are ready, so that every record
	// written after the status line is printed.
	ends, err := c.EndOffsets(ctx, o.topic)
	if err != nil {
		return err
	}
	consume := []kgo.Opt{kgo.ConsumeTopics(o.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	where := "from the beginning"
	if !o.fromBeginning {
		where = "from the end"
		if ends != nil {
			from := map[int32]kgo.Offset{}
			for p, end := range ends {
				from[p] = kgo.NewOffset().At(end)
			}
			consume = []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: from})}
		}
		// A topic that does not exist yet is read from its start once
		// it is created: all of it is new.
	}
	cl, err := c.NewKafkaClient(consume...)
	if err != nil {
		return err
	}
	defer cl.Close()
	fmt.Fprintf(status, "eventfx: tailing %s %s (%s)\n", o.topic, where, stopsWhen(o.limit))

	n := 0
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil // Ctrl-C: the normal way to stop
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if _, lost := errors.AsType[*kgo.ErrDataLoss](err); lost {
				fmt.Fprintf(status, "eventfx: %s partition %d: %v\n", o.topic, p, err)
				return
			}
			if ferr == nil {
				ferr = fmt.Errorf("read %s partition %d: %w", o.topic, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			if err := o.print(out, it.Next()); err != nil {
				return err
			}
			if n++; o.limit > 0 && n >= o.limit {
				return nil
			}
		}
	}
}

// tailRecord is the --json form of a record.
type tailRecord struct {
	ID            string            `json:"id"`
	Topic         string            `json:"topic"`
	Partition     int32             `json:"partition"`
	Offset        int64             `json:"offset"`
	Key           *string           `json:"key"`
	CorrelationID string            `json:"correlation_id"`
	Headers       map[string]string `json:"headers"`
	Payload       string            `json:"payload"`
	PayloadBase64 string            `json:"payload_base64,omitempty"`
	Timestamp     time.Time         `json:"timestamp"`
	// With --decode: the schema ID and the decoded value, or why not.
	SchemaID    int             `json:"schema_id,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
}

func (o tailOpts) print(w io.Writer, r *kgo.Record) error {
	id := header(r, poison.IDHeader)
	if id == "" {
		id = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	var dec schema.Decoded
	var decErr error
	if o.decode {
		dec, decErr = o.registry.DecodeJSON(r.Value)
	}
	if o.json {
		tr := tailRecord{
			ID: id, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			CorrelationID: header(r, meta.CorrelationID),
			Headers:       make(map[string]string, len(r.Headers)),
			Payload:       string(r.Value),
			Timestamp:     r.Timestamp.UTC(),
		}
		if r.Key != nil {
			k := string(r.Key)
			tr.Key = &k
		}
		for _, h := range r.Headers {
			tr.Headers[h.Key] = string(h.Value)
		}
		if !utf8.Valid(r.Value) {
			tr.PayloadBase64 = base64.StdEncoding.EncodeToString(r.Value)
		}
		switch {
		case decErr != nil:
			tr.DecodeError = decErr.Error()
		case o.decode:
			tr.SchemaID, tr.Value = dec.ID, dec.JSON
		}
		return writeJSON(w, tr)
	}
	l := new(line).word(strconv.Itoa(int(r.Partition))+"/"+strconv.FormatInt(r.Offset, 10)).
		kv("id", id).kv("correlation_id", header(r, meta.CorrelationID)).kv("key", string(r.Key))
	switch {
	case decErr != nil:
		l.kv("decode_error", decErr.Error()).word(payload(r.Value))
	case o.decode:
		l.kv("schema_id", strconv.Itoa(dec.ID)).word(string(dec.JSON))
	default:
		l.word(payload(r.Value))
	}
	return l.writeTo(w)
}

// stopsWhen says when a tail of at most limit records (0: no limit) stops.
func stopsWhen(limit int) string {
	switch limit {
	case 0:
		return "Ctrl-C to stop"
	case 1:
		return "stops after 1 record, or Ctrl-C"
	default:
		return fmt.Sprintf("stops after %d records, or Ctrl-C", limit)
	}
}
