package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eventfx/eventfx/config"
)

// Time limits that keep every command from hanging on an absent or stuck
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

// kafkaConn is a command's connection to Kafka: the brokers, the options
// every client shares (security, timeouts, partitioner) and an admin client
// that answered a ping.
type kafkaConn struct {
	brokers []string
	cfg     config.Config
	opts    []kgo.Opt
	admin   *kgo.Client
}

// connect resolves the brokers and the config, and returns a connection
// once a broker answered; otherwise a one-line error naming the brokers.
// The caller closes it.
func (g *globals) connect(ctx context.Context) (*kafkaConn, error) {
	brokers, cfg, err := g.resolveBrokers()
	if err != nil {
		return nil, err
	}
	opts, err := clientOpts(brokers, cfg.Kafka)
	if err != nil {
		return nil, err
	}
	c := &kafkaConn{brokers: brokers, cfg: cfg, opts: opts}
	if c.admin, err = c.client(); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := c.admin.Ping(pctx); err != nil {
		c.admin.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, noBrokerError(brokers, cfg.Kafka, err)
	}
	return c, nil
}

// clientOpts are the kgo options shared by the clients of a command:
//   - timeouts that turn an absent broker into an error within seconds;
//   - TLS and SASL from kafka.tls and kafka.sasl;
//   - Sarama's hash partitioner (FNV-1a), as eventfx's services use
//     (watermill-kafka), so a key goes to the same partition whoever
//     writes it; unkeyed records stick to a partition per batch;
//   - acks from all in-sync replicas with the idempotent producer (kgo's
//     defaults) whatever kafka.acks says: the CLI waits for durable writes.
func clientOpts(brokers []string, k config.Kafka) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("eventfx-cli"),
		kgo.DialTimeout(dialTimeout),
		kgo.RetryTimeout(requestTimeout),
		kgo.RequestRetries(5),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))),
	}
	if k.TLS.Enabled {
		tc, err := tlsConfig(k.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch k.SASL.Mechanism {
	case "":
	case config.SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsMechanism()))
	case config.SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha256Mechanism()))
	case config.SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: unsupported %q", k.SASL.Mechanism)
	}
	return opts, nil
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(b)
	return h.Sum32()
}

// tlsConfig verifies the brokers against ca_file (else the system roots)
// and presents cert_file/key_file when given.
func tlsConfig(t config.TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// noBrokerError says, on one line, that no broker answered, where, and the
// likely causes. It never shows a password.
func noBrokerError(brokers []string, k config.Kafka, err error) error {
	at := strings.Join(brokers, ",")
	cause := oneLine(err.Error())
	if errors.Is(err, kerr.SaslAuthenticationFailed) {
		return fmt.Errorf("the Kafka broker at %s refused SASL %s authentication as user %q (%s)", at, k.SASL.Mechanism, k.SASL.Username, cause)
	}
	var hints []string
	if k.SASL.Mechanism != "" {
		hints = append(hints, fmt.Sprintf("with SASL %s as user %q, wrong credentials (a broker may close the connection when authentication fails)", k.SASL.Mechanism, k.SASL.Username))
	}
	if k.TLS.Enabled {
		hints = append(hints, "with TLS, a certificate the broker or eventfx does not trust (kafka.tls.ca_file, cert_file, key_file)")
	}
	if len(hints) == 0 {
		return fmt.Errorf("no Kafka broker answered at %s (%s)", at, cause)
	}
	return fmt.Errorf("no Kafka broker answered at %s (%s); likely causes: %s", at, cause, strings.Join(hints, "; "))
}

// client returns a new client with the shared options and extra ones.
func (c *kafkaConn) client(extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), c.opts...), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// producer returns a client that writes records, creating their topics
// when the brokers allow it (as eventfx's services do on first use).
func (c *kafkaConn) producer() (*kgo.Client, error) {
	return c.client(kgo.AllowAutoTopicCreation())
}

// Close closes the admin client.
func (c *kafkaConn) Close() { c.admin.Close() }

// endOffsets returns the end offset of each partition of topic, or nil when
// the topic does not exist.
func (c *kafkaConn) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	return c.offsets(ctx, topic, true)
}

func (c *kafkaConn) offsets(ctx context.Context, topic string, end bool) (map[int32]int64, error) {
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
func (c *kafkaConn) readToEnd(ctx context.Context, topic string, fn func(*kgo.Record) error) error {
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
	cl, err := c.client(
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
