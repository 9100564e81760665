package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"time"

	"github.com/IBM/sarama"
	metrics "github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/eventfx/eventfx/config"
)

// connection is how every eventfx client reaches the brokers, read once
// from the config: the one path from config.Kafka to the settings of both
// client libraries. Its two renderers, franz and sarama, turn it into
// franz-go options (the producer, key mode, the CLI, the poison tools, the
// lag collector) and into the Sarama configuration of watermill-kafka's
// subscriber.
type connection struct {
	clientID string
	// tls is nil without kafka.tls.enabled; it verifies the brokers'
	// certificates against ca_file when given, else the system roots.
	tls *tls.Config
	// mechanism is kafka.sasl.mechanism ("" without SASL).
	mechanism, user, password string
	// partitioner places the records the client produces
	// (kafka.partitioner, kafka.partitioners).
	partitioner kgo.Partitioner
}

// connectionOf reads the connection settings of k for a client naming
// itself clientID. It fails on a TLS file it cannot read or an unknown
// SASL mechanism (config.Validate reports both first).
func connectionOf(k config.Kafka, clientID string) (connection, error) {
	c := connection{clientID: clientID, mechanism: k.SASL.Mechanism, user: k.SASL.Username, password: k.SASL.Password, partitioner: partitioner(k)}
	switch c.mechanism {
	case "", config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512:
	default:
		return connection{}, fmt.Errorf("kafka.sasl.mechanism: unsupported %q", c.mechanism)
	}
	if k.TLS.Enabled {
		tc, err := k.TLS.ClientConfig()
		if err != nil {
			return connection{}, err
		}
		c.tls = tc
	}
	return c, nil
}

// franz is the connection as franz-go options: seed brokers, client ID,
// TLS, SASL, and the partitioner every eventfx producer shares.
func (c connection) franz(brokers []string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(c.clientID), kgo.RecordPartitioner(c.partitioner)}
	if c.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(c.tls))
	}
	switch c.mechanism {
	case config.SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.user, Pass: c.password}.AsMechanism()))
	case config.SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.user, Pass: c.password}.AsSha256Mechanism()))
	case config.SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.user, Pass: c.password}.AsSha512Mechanism()))
	}
	return opts
}

// sarama is the connection in a Sarama configuration: client ID, TLS and
// SASL (PLAIN, SCRAM-SHA-256/512 through xdg-go/scram, as franz-go).
func (c connection) sarama(sc *sarama.Config) {
	sc.ClientID = c.clientID
	if c.tls != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = c.tls
	}
	switch c.mechanism {
	case "":
		return
	case config.SASLPlain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case config.SASLScramSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: xscram.SHA256} }
	case config.SASLScramSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: xscram.SHA512} }
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.User = c.user
	sc.Net.SASL.Password = c.password
}

// ClientOpts are the franz-go options of a client of eventfx's own (the
// CLI, the poison tools, the lag collector) for k: the brokers, clientID,
// TLS and SASL from kafka.tls and kafka.sasl, and eventfx's partitioner.
// Callers add their timeouts.
func ClientOpts(brokers []string, k config.Kafka, clientID string) ([]kgo.Opt, error) {
	c, err := connectionOf(k, clientID)
	if err != nil {
		return nil, err
	}
	return c.franz(brokers), nil
}

// partitioner is how every eventfx producer places records: a keyed record
// on the partition its topic's partitioner picks for the key (see
// config.Kafka.Partitioner: the same partition as a Java client's, by
// default), an unkeyed one on a partition kept for a batch (sticky).
func partitioner(k config.Kafka) kgo.Partitioner {
	def := keyPartitioner(k.Partitioner)
	if len(k.Partitioners) == 0 {
		return def
	}
	p := byTopic{def: def, topics: make(map[string]kgo.Partitioner, len(k.Partitioners))}
	for _, tp := range k.Partitioners {
		p.topics[tp.Topic] = keyPartitioner(tp.Partitioner)
	}
	return p
}

// keyPartitioner is the partitioner named name (config.Partitioner*).
func keyPartitioner(name string) kgo.Partitioner {
	switch name {
	case config.PartitionerFNV1a:
		// Sarama's hash partitioner: FNV-1a, negative hashes negated.
		return kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))
	case config.PartitionerCRC32:
		return kgo.StickyKeyPartitioner(crc32Consistent)
	default:
		// Java's: (murmur2(key) & 0x7fffffff) mod n.
		return kgo.StickyKeyPartitioner(nil)
	}
}

// crc32Consistent is librdkafka's consistent partitioner: CRC-32 (IEEE) of
// the key, unsigned, mod n.
func crc32Consistent(key []byte, n int) int {
	return int(crc32.ChecksumIEEE(key) % uint32(n))
}

// byTopic is a partitioner per topic, def for the others.
type byTopic struct {
	def    kgo.Partitioner
	topics map[string]kgo.Partitioner
}

func (p byTopic) ForTopic(topic string) kgo.TopicPartitioner {
	if tp, ok := p.topics[topic]; ok {
		return tp.ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}

// Partitioner is the partitioner of k as a franz-go option, for clients
// that do not take ClientOpts (benchmarks, tests).
func Partitioner(k config.Kafka) kgo.Opt { return kgo.RecordPartitioner(partitioner(k)) }

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(b)
	return h.Sum32()
}

// saramaConfig is the Sarama configuration of the partition-mode
// subscriber (watermill-kafka) for cfg. The choices, against Sarama's
// defaults:
//   - initial offset from kafka.initial_offset (Sarama: newest);
//   - offsets auto-committed every kafka.commit_interval and flushed when
//     a session ends (rebalance, graceful stop), so a crash redelivers at
//     most one interval of handled messages;
//   - session/heartbeat/rebalance timeouts from config;
//   - fetches: Sarama's defaults. Fetch.Min 1 byte and MaxWaitTime
//     500 ms (Kafka's defaults) answer a fetch as soon as one record is
//     there, so a record waits for at most one fetch round at any rate; a
//     larger Fetch.Min makes fewer, larger rounds at high rates but holds
//     records up to MaxWaitTime at low ones. The partitions' queues
//     (ChannelBufferSize 256) do not fill while the handler keeps up
//     (ChannelBufferSize 1024, Fetch.Default 8 MB and MaxProcessingTime
//     1 s were benchmarked in internal/benchmarks and did not move the
//     rate);
//   - no Sarama metrics (discardMetrics);
//   - the connection (client ID, TLS, SASL).
func saramaConfig(cfg config.Config, c connection) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	c.sarama(sc)
	sc.Version = sarama.V2_8_0_0
	sc.MetricRegistry = discardMetrics{}
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond
	sc.Metadata.Retry.Max = 10

	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if cfg.Kafka.InitialOffset == config.OffsetNewest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = cfg.Kafka.CommitInterval
	sc.Consumer.Group.Session.Timeout = cfg.Kafka.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = cfg.Kafka.HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = cfg.Kafka.RebalanceTimeout
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sarama config: %w", err)
	}
	return sc, nil
}

// discardMetrics is the metrics registry of the subscriber's Sarama
// client: it keeps nothing, and the metrics it hands out do nothing.
// Sarama updates its go-metrics (rates per broker and topic, histograms
// of request latency, response size and fetched batch size, each a locked
// reservoir sample) on every request and every fetched partition, and
// nothing reads them: eventfx's metrics are its own. A kind of metric it
// does not know (none in the Sarama eventfx uses) is made as a standard
// registry would and not kept.
type discardMetrics struct{}

var _ metrics.Registry = discardMetrics{}

func (discardMetrics) Each(func(string, any))            {}
func (discardMetrics) Get(string) any                    { return nil }
func (discardMetrics) GetAll() map[string]map[string]any { return nil }
func (discardMetrics) Register(string, any) error        { return nil }
func (discardMetrics) RunHealthchecks()                  {}
func (discardMetrics) Unregister(string)                 {}
func (discardMetrics) UnregisterAll()                    {}

// GetOrRegister returns the no-op metric of the kind that the constructor
// (or metric) m makes.
func (discardMetrics) GetOrRegister(name string, m any) any {
	switch m.(type) {
	case func() metrics.Meter, metrics.Meter:
		return metrics.NilMeter{}
	case func() metrics.Counter, metrics.Counter:
		return metrics.NilCounter{}
	case func() metrics.Histogram, metrics.Histogram:
		return metrics.NilHistogram{}
	case func() metrics.Gauge, metrics.Gauge:
		return metrics.NilGauge{}
	}
	return metrics.NewRegistry().GetOrRegister(name, m)
}

// scramClient adapts xdg-go/scram to Sarama's SCRAMClient.
type scramClient struct {
	hash xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) {
	if c.conv == nil {
		return "", errors.New("scram: Step before Begin")
	}
	return c.conv.Step(challenge)
}

func (c *scramClient) Done() bool { return c.conv != nil && c.conv.Done() }
