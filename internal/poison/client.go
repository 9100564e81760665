package poison

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
)

// Time limits that keep every operation from hanging on an absent or stuck
// broker.
const (
	// pingTimeout bounds the first contact with the brokers.
	pingTimeout = 6 * time.Second
	// dialTimeout bounds one TCP (and TLS) connection attempt.
	dialTimeout = 4 * time.Second
	// requestTimeout bounds a metadata or admin request with its retries.
	requestTimeout = 15 * time.Second
	// deliveryTimeout bounds the delivery of one produced record, retries
	// included.
	deliveryTimeout = 30 * time.Second
	// stallTimeout is how long reading a topic to its end may go without
	// a record before it is given up.
	stallTimeout = 30 * time.Second
)

// clientID is how a Client's connections name themselves to the brokers.
const clientID = "eventfx-cli"

// Client operates on poison topics and their replay ledgers: List, Stats
// and Replay. Its methods are safe for concurrent use, but two Replays of the
// same poison topic must not run at once, in one process or in several
// (see the replay ledger). Dial returns one; close it when done.
type Client struct {
	opts      []kgo.Opt
	admin     *kgo.Client
	badLedger func(ledgerTopic string, err error)
}

// An Option adjusts a Client; pass it to Dial.
type Option func(*Client)

// OnBadLedgerRecord makes List and Replay call fn with each record of a
// replay ledger that they cannot read (its key is not
// "<partition>/<offset>") and therefore ignore. By default such records are
// ignored silently.
func OnBadLedgerRecord(fn func(ledgerTopic string, err error)) Option {
	return func(c *Client) { c.badLedger = fn }
}

// Dial connects to the brokers, with TLS and SASL as k.TLS and k.SASL say
// (the other fields of k are not used), and returns a Client once a broker
// answered a ping. When none answers within a few seconds, the error is one
// line naming the brokers and the likely causes (never a password); when
// ctx is done first, it is ctx.Err().
//
// Whatever k.Acks says, the Client's writes wait for all in-sync replicas
// (idempotent producer). Keys are placed by k's partitioner
// (kafka.partitioner, kafka.partitioners), as eventfx's services place
// them.
func Dial(ctx context.Context, brokers []string, k config.Kafka, opts ...Option) (*Client, error) {
	kopts, err := clientOpts(brokers, k)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: kopts, badLedger: func(string, error) {}}
	for _, o := range opts {
		o(c)
	}
	if c.admin, err = c.NewKafkaClient(); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := c.admin.Ping(pctx); err != nil {
		c.admin.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, kafka.Unreachable(brokers, k, err)
	}
	return c, nil
}

// Close closes the Client's connections. Clients returned by
// NewKafkaClient are not closed: their callers close them.
func (c *Client) Close() { c.admin.Close() }

// NewKafkaClient returns a new franz-go client of the Client's brokers,
// with its security, timeouts and partitioner, and opts; for other work on
// the same cluster (the CLI's publish and tail use it). The caller closes
// it.
func (c *Client) NewKafkaClient(opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), c.opts...), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// EndOffsets returns the end offset of each partition of topic, or nil
// when the topic does not exist.
func (c *Client) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	return c.offsets(ctx, topic, true)
}

// clientOpts are the kgo options shared by the clients of a Client:
//   - timeouts that turn an absent broker into an error within seconds;
//   - TLS and SASL from kafka.tls and kafka.sasl;
//   - k's partitioner, as eventfx's services use, so a key goes to the
//     same partition whoever writes it; unkeyed records stick to a
//     partition per batch;
//   - acks from all in-sync replicas with the idempotent producer (kgo's
//     defaults) whatever kafka.acks says: replays wait for durable writes.
func clientOpts(brokers []string, k config.Kafka) ([]kgo.Opt, error) {
	opts, err := kafka.ClientOpts(brokers, k, clientID)
	if err != nil {
		return nil, err
	}
	return append(opts,
		kgo.DialTimeout(dialTimeout),
		kgo.RetryTimeout(requestTimeout),
		kgo.RequestRetries(5),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	), nil
}

// offsets returns the start or end offset of each partition of topic, or
// nil when the topic does not exist.
func (c *Client) offsets(ctx context.Context, topic string, end bool) (map[int32]int64, error) {
	// kadm lists the partitions from metadata cached for up to
	// MetadataMinAge (5s): it would miss a topic created meanwhile, such
	// as the ledger an earlier Replay of this Client created, and read it
	// as empty. Forget the topic, so that the brokers are asked.
	c.admin.PurgeTopicsFromClient(topic)
	adm := kadm.NewClient(c.admin)
	list, which := adm.ListStartOffsets, "start"
	if end {
		list, which = adm.ListEndOffsets, "end"
	}
	listed, err := list(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("%s offsets of %s: %w", which, topic, err)
	}
	out := map[int32]int64{}
	for _, o := range listed[topic] {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition) && o.Partition == -1:
			return nil, nil
		case o.Err != nil:
			return nil, fmt.Errorf("%s offset of %s partition %d: %w", which, topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	}
	return out, nil
}

// readToEnd calls fn with every record of topic, partition by partition in
// offset order (partitions interleaved), from the start of each partition
// to the end it had when readToEnd began; records written meanwhile are not
// read, so it never waits for new ones. A missing topic has no records.
// It gives up with an error when no record arrives for stallTimeout.
func (c *Client) readToEnd(ctx context.Context, topic string, fn func(*kgo.Record) error) error {
	ends, err := c.offsets(ctx, topic, true)
	if err != nil || len(ends) == 0 {
		return err
	}
	starts, err := c.offsets(ctx, topic, false)
	if err != nil {
		return err
	}
	want := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	for p, end := range ends {
		if start := starts[p]; end > start {
			want[p] = end
			from[p] = kgo.NewOffset().At(start)
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := c.NewKafkaClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.KeepControlRecords(), // a transaction marker may be a partition's last offset
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(want) > 0 {
		pctx, cancel := context.WithTimeout(ctx, stallTimeout)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			return fmt.Errorf("read %s: no record for %s, before the end of partitions %v", topic, stallTimeout, keys(want))
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			_, lost := errors.AsType[*kgo.ErrDataLoss](err) // retention deleted records: go on
			if ferr == nil && !lost && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read %s partition %d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				continue
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() {
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func keys(m map[int32]int64) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
