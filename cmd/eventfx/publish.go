package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/schema"
)

// maxLine bounds one stdin line (one message) for publish.
const maxLine = 16 << 20

type publishOpts struct {
	topic, key, correlationID string
	valueSchema, registryURL  string
}

func newPublishCmd(g *globals) *cobra.Command {
	var o publishOpts
	cmd := &cobra.Command{
		Use:   "publish --topic T [--key K] [--correlation-id C] [PAYLOAD]",
		Short: "Publish messages as eventfx services do",
		Long: `Publishes PAYLOAD, or each line of stdin when there is no argument (one message
per non-empty line), to --topic in eventfx's wire format: the payload untouched,
a new message ID in the _watermill_message_uuid header, a correlation_id header
(--correlation-id, else a new one per message), and --key as the Kafka key
(partitioned as eventfx's services partition; no key when not given).

With --value-schema FILE (.avsc Avro, .json JSON Schema, .proto Protobuf: its
first message), each input is a JSON document encoded with that schema in Confluent's Schema Registry wire format
(magic byte 0, the schema ID, the encoded value); the schema is registered
under the topic's subject (schema_registry.subject_strategy) at
--schema-registry first. A line that does not match the schema stops the
command with an error naming the line; nothing is published for it (the lines
before it were).

Each message is acknowledged by all in-sync replicas before its line is printed:
  published id=<ID> topic=<T> partition=<P> offset=<O> correlation_id=<C>`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := config.ValidTopicName(o.topic); err != nil {
				return fmt.Errorf("--topic: %w", err)
			}
			if len(args) == 1 && args[0] == "" {
				return errors.New("empty payload")
			}
			c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			return o.run(cmd.Context(), c, args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.topic, "topic", "", "topic to publish to (required)")
	cmd.Flags().StringVar(&o.key, "key", "", "partition key (default: none)")
	cmd.Flags().StringVar(&o.correlationID, "correlation-id", "", "correlation ID of every message (default: a new one per message)")
	cmd.Flags().StringVar(&o.valueSchema, "value-schema", "", "encode each JSON input with this schema (.avsc, .json, .proto), registered under the topic's subject")
	registryFlag(cmd, &o.registryURL)
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// run publishes the argument or stdin's lines, printing a line per
// acknowledged message; it stops reading at the first failure.
func (o publishOpts) run(parent context.Context, c *kafkaConn, args []string, in io.Reader, out, status io.Writer) error {
	encode, err := o.encoder(parent, c.cfg, status)
	if err != nil {
		return err
	}
	cl, err := c.producer()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	var (
		mu               sync.Mutex
		firstErr         error
		sent, ok, failed int
	)
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
				cancel()
			}
			return
		}
		ok++
		l := new(line).word("published").kv("id", header(r, poison.IDHeader)).kv("topic", r.Topic).
			kv("partition", strconv.Itoa(int(r.Partition))).kv("offset", strconv.FormatInt(r.Offset, 10)).
			kv("correlation_id", header(r, meta.CorrelationID))
		if err := l.writeTo(out); err != nil && firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	publish := func(n int, payload []byte) error {
		r, err := encode(payload)
		if err != nil {
			if len(args) == 1 {
				return fmt.Errorf("payload: %w", err)
			}
			if sent > 0 {
				return fmt.Errorf("line %d: %w (not published; the %d lines before it were)", n, err, sent)
			}
			return fmt.Errorf("line %d: %w (nothing published)", n, err)
		}
		sent++
		cl.Produce(ctx, r, done)
		return nil
	}

	var readErr error
	if len(args) == 1 {
		readErr = publish(1, []byte(args[0]))
	} else {
		readErr = readLines(ctx, in, publish)
	}
	// Flush waits for every record's acknowledgement or failure; each is
	// bounded by the delivery timeout.
	_ = cl.Flush(context.WithoutCancel(ctx))

	mu.Lock()
	defer mu.Unlock()
	switch {
	case firstErr != nil:
		return fmt.Errorf("%d of %d messages not published: %w", failed, sent, firstErr)
	case readErr != nil:
		return readErr
	case parent.Err() != nil:
		return fmt.Errorf("interrupted after %d messages", ok)
	case sent == 0:
		return errors.New("nothing to publish: no payload argument and no line on stdin")
	}
	return nil
}

// readLines calls fn with each non-empty line of in and its number until
// its end, until fn fails or until ctx is done (a read blocked on a
// terminal does not delay Ctrl-C).
func readLines(ctx context.Context, in io.Reader, fn func(n int, b []byte) error) error {
	type numbered struct {
		n int
		b []byte
	}
	lines := make(chan numbered)
	errc := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		n := 0
		for sc.Scan() {
			n++
			if len(sc.Bytes()) == 0 {
				continue
			}
			select {
			case lines <- numbered{n, append([]byte(nil), sc.Bytes()...)}:
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			errc <- fmt.Errorf("read stdin (line %d): %w", n+1, err)
		}
	}()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				select {
				case err := <-errc:
					return err
				default:
					return nil
				}
			}
			if err := fn(l.n, l.b); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// encoder returns the function that turns an input into a record: the
// payload untouched, or with --value-schema encoded with the schema.
func (o publishOpts) encoder(ctx context.Context, cfg config.Config, status io.Writer) (func([]byte) (*kgo.Record, error), error) {
	if o.valueSchema == "" {
		return func(b []byte) (*kgo.Record, error) { return o.record(b), nil }, nil
	}
	format, text, err := schemaFile(o.valueSchema)
	if err != nil {
		return nil, err
	}
	reg, err := openRegistry(o.registryURL, cfg)
	if err != nil {
		return nil, err
	}
	enc, err := reg.NewEncoder(ctx, o.topic, format, text)
	reg.Close() // the encoder keeps what it needs
	if err != nil {
		return nil, fmt.Errorf("--value-schema %s: %w", o.valueSchema, err)
	}
	fmt.Fprintf(status, "eventfx: encoding with schema ID %d (subject %s)\n", enc.ID(), enc.Subject())
	contentType := map[schema.Format]string{
		schema.FormatAvro: schema.ContentTypeAvro, schema.FormatJSON: schema.ContentTypeJSON, schema.FormatProtobuf: schema.ContentTypeProtobuf,
	}[format]
	return func(b []byte) (*kgo.Record, error) {
		v, err := enc.EncodeJSON(b)
		if err != nil {
			return nil, err
		}
		r := o.record(v)
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: meta.ContentType, Value: []byte(contentType)})
		return r, nil
	}, nil
}

func (o publishOpts) record(payload []byte) *kgo.Record {
	cid := o.correlationID
	if cid == "" {
		cid = uuid.NewString()
	}
	r := &kgo.Record{Topic: o.topic, Value: payload, Headers: []kgo.RecordHeader{
		{Key: poison.IDHeader, Value: []byte(uuid.NewString())},
		{Key: meta.CorrelationID, Value: []byte(cid)},
	}}
	if o.key != "" {
		r.Key = []byte(o.key)
	}
	return r
}

// header returns the value of r's last header named key, or "".
func header(r *kgo.Record, key string) string {
	v := ""
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}
