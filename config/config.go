// Package config holds eventfx's typed configuration: the keys of the YAML
// file, their defaults, loading (file + EVENTFX_* environment) and Validate.
package config

import "time"

// Special values of configuration keys.
const (
	// Embedded, as the only entry of Kafka.Brokers, starts an in-process
	// Kafka-protocol broker on a free loopback port.
	Embedded = "embedded"

	OffsetOldest = "oldest"
	OffsetNewest = "newest"

	AcksAll    = "all"
	AcksLeader = "leader"

	// Partitioners place a keyed record on partition hash(key) mod n.
	// PartitionerMurmur2 is Java's (and Kafka Streams', kafka-python's,
	// KafkaJS's, franz-go's default); PartitionerFNV1a is Sarama's and
	// watermill-kafka's; PartitionerCRC32 is librdkafka's "consistent".
	PartitionerMurmur2 = "murmur2"
	PartitionerFNV1a   = "fnv1a"
	PartitionerCRC32   = "crc32"

	ConsumePartition = "partition"
	ConsumeKey       = "key"

	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"

	// DefaultPoisonTopic is where messages whose handling finally failed go.
	DefaultPoisonTopic = "eventfx.poison"
)

// Config is the whole configuration of an eventfx service. The zero value of
// every field means "use the default", documented on the field.
type Config struct {
	// Service names the service: client ID, and prefix of consumer groups
	// unless Kafka.ConsumerGroup is set. Default "eventfx"; from
	// [a-zA-Z0-9._-].
	Service string `koanf:"service"`
	// Kafka is the transport.
	Kafka Kafka `koanf:"kafka"`
	// Retry is the default retry policy of every handler.
	Retry Retry `koanf:"retry"`
	// Poison is the poison queue.
	Poison Poison `koanf:"poison"`
	// SchemaRegistry is the registry of the Schema Registry codecs.
	SchemaRegistry SchemaRegistry `koanf:"schema_registry"`
	// ShutdownTimeout bounds the graceful drain at stop. Default 30s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// HTTP is the ops endpoints (and the gateway API for cmd/publisher).
	HTTP HTTP `koanf:"http"`
	// Publisher configures cmd/publisher only.
	Publisher Publisher `koanf:"publisher"`
	// Subscriber configures cmd/subscriber only.
	Subscriber Subscriber `koanf:"subscriber"`
	// Observability configures logs, metrics and traces.
	Observability Observability `koanf:"observability"`
	// Console configures `eventfx console`.
	Console Console `koanf:"console"`
	// Outbox configures the transactional outbox (PostgreSQL).
	Outbox Outbox `koanf:"outbox"`
}

// Kafka configures the Kafka transport.
type Kafka struct {
	// Brokers are the bootstrap brokers, host:port. Default [embedded]:
	// an in-process broker (see Embedded). From the environment:
	// comma-separated.
	Brokers []string `koanf:"brokers"`
	// ConsumerGroup prefixes every handler's consumer group
	// ("<group>.<handler>"). Empty (the default): Service. From [a-zA-Z0-9._-].
	ConsumerGroup string `koanf:"consumer_group"`
	// InitialOffset is where a group with no committed offset starts:
	// "oldest" (default) or "newest".
	InitialOffset string `koanf:"initial_offset"`
	// Acks is "all" (default; idempotent producer) or "leader".
	Acks string `koanf:"acks"`
	// Partitioner is how every eventfx producer places keyed records:
	// "murmur2" (default; the partition Java clients pick for the key),
	// "fnv1a" (Sarama's and watermill-kafka's) or "crc32" (librdkafka's
	// consistent). Every producer of a topic must agree.
	Partitioner string `koanf:"partitioner"`
	// Partitioners override Partitioner for some topics, those whose other
	// producers hash differently: a list rather than a map, as topic names
	// hold dots.
	Partitioners []TopicPartitioner `koanf:"partitioners"`
	// Consume is how every handler consumes, unless it says otherwise:
	// "partition" (default; watermill-kafka, one message in flight per
	// partition) or "key" (keys of one partition in parallel, in order per
	// key; see docs/configuration.md).
	Consume string `koanf:"consume"`
	// MaxInFlight bounds the messages in flight per handler in key mode.
	// Default 256.
	MaxInFlight int `koanf:"max_in_flight"`
	// SessionTimeout is the consumer-group session timeout: how long a
	// crashed member keeps its partitions. Default 10s.
	SessionTimeout time.Duration `koanf:"session_timeout"`
	// HeartbeatInterval is the consumer-group heartbeat. Default 3s; must be
	// below SessionTimeout.
	HeartbeatInterval time.Duration `koanf:"heartbeat_interval"`
	// RebalanceTimeout is how long members have to rejoin a rebalance.
	// Default 60s.
	RebalanceTimeout time.Duration `koanf:"rebalance_timeout"`
	// CommitInterval is how often marked offsets are committed; they are
	// also committed at graceful stop and at rebalance. Default 1s.
	CommitInterval time.Duration `koanf:"commit_interval"`
	// TLS configures TLS to the brokers.
	TLS TLS `koanf:"tls"`
	// SASL configures SASL authentication.
	SASL SASL `koanf:"sasl"`
}

// TopicPartitioner is the partitioner of one topic (kafka.partitioners).
type TopicPartitioner struct {
	Topic       string `koanf:"topic"`
	Partitioner string `koanf:"partitioner"`
}

// PartitionerOf is the partitioner of topic: its kafka.partitioners
// entry's, else kafka.partitioner.
func (k Kafka) PartitionerOf(topic string) string {
	for _, tp := range k.Partitioners {
		if tp.Topic == topic {
			return tp.Partitioner
		}
	}
	return k.Partitioner
}

// TLS configures TLS to Kafka. All fields are optional.
type TLS struct {
	// Enabled turns TLS on. Default false; must be true if a file is set.
	Enabled bool `koanf:"enabled"`
	// CAFile is a PEM file of CAs to trust. Default: the system's roots.
	CAFile string `koanf:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and its key, for
	// mutual TLS. Default none; set both or neither.
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// SASL configures SASL authentication to Kafka. Mechanism empty = none.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables SASL.
	Mechanism string `koanf:"mechanism"`
	// Username is required when Mechanism is set.
	Username string `koanf:"username"`
	// Password is required when Mechanism is set. A secret: String,
	// Redacted and errors never show it.
	Password string `koanf:"password"`
}

// Retry is an exponential backoff with jitter. Zero fields take defaults.
type Retry struct {
	// MaxRetries is the number of retries after the first attempt. Default 5.
	// Use NoRetries for none.
	MaxRetries int `koanf:"max_retries"`
	// InitialInterval is the delay before the first retry. Default 100ms.
	InitialInterval time.Duration `koanf:"initial_interval"`
	// MaxInterval caps every delay. Default 10s.
	MaxInterval time.Duration `koanf:"max_interval"`
	// Multiplier grows the delay after each retry. Default 2.
	Multiplier float64 `koanf:"multiplier"`
	// Jitter randomises each delay by ±Jitter×delay. Default 0.2; range [0,1].
	Jitter float64 `koanf:"jitter"`
	// AttemptTimeout bounds one attempt. Default 30s.
	AttemptTimeout time.Duration `koanf:"attempt_timeout"`
}

// NoRetries, as Retry.MaxRetries, disables retries (zero means default).
const NoRetries = -1

// Poison configures the poison queue.
type Poison struct {
	// Topic receives poisoned messages. Default "eventfx.poison".
	Topic string `koanf:"topic"`
}

// HTTP configures the ops endpoints.
type HTTP struct {
	// Addr is the listen address. Default 127.0.0.1:8080.
	Addr string `koanf:"addr"`
	// AuthToken, when set, protects the gateway API with a bearer token.
	// Default empty: no authentication. A secret: never printed.
	AuthToken string `koanf:"auth_token"`
}

// Publisher configures the HTTP → Kafka gateway (cmd/publisher).
type Publisher struct {
	// AllowedTopics lists the topics the gateway accepts; empty = any topic
	// except the poison topic, which it may not list. From the environment:
	// comma-separated.
	AllowedTopics []string `koanf:"allowed_topics"`
	// MaxBodyBytes bounds a request body. Default 1 MiB.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// PublishTimeout bounds how long a request waits for the broker's
	// acknowledgement; past it the gateway answers 503 with Retry-After
	// (the write may still land: the client retries with the same
	// X-Event-ID). Default 3s; zero means the default.
	PublishTimeout time.Duration `koanf:"publish_timeout"`
}

// Subscriber configures the Kafka → HTTP relay (cmd/subscriber).
type Subscriber struct {
	// Routes relay topics to webhooks. Default none. Set only in the config
	// file, not the environment.
	Routes []Route `koanf:"routes"`
}

// Route relays one topic to one webhook.
type Route struct {
	// Name is the handler name; required and unique among routes, from
	// [a-zA-Z0-9._-].
	Name string `koanf:"name"`
	// Topic is consumed; required, a legal Kafka topic name.
	Topic   string  `koanf:"topic"`
	Webhook Webhook `koanf:"webhook"`
	// Retry overrides fields of the service's retry block for this route:
	// its non-zero fields replace the service's. The route's effective
	// policy is Config.Retry.Override(Route.Retry). Optional.
	Retry Retry `koanf:"retry"`
	// Consume and MaxInFlight override kafka.consume and
	// kafka.max_in_flight for this route. Optional.
	Consume     string `koanf:"consume"`
	MaxInFlight int    `koanf:"max_in_flight"`
	// Decode is "" (default: the payload is delivered untouched) or "json"
	// (DecodeJSON): Schema-Registry-framed values are delivered decoded,
	// as application/json.
	Decode string `koanf:"decode"`
}

// DecodeJSON, as Route.Decode, delivers Schema-Registry-framed values as JSON.
const DecodeJSON = "json"

// Webhook is the HTTP endpoint a route delivers to.
type Webhook struct {
	// URL is an absolute http or https URL; required. It is never printed
	// with a password in it.
	URL string `koanf:"url"`
	// Timeout bounds one delivery. Default 5s.
	Timeout time.Duration `koanf:"timeout"`
	// Secret, when set, signs deliveries (HMAC-SHA256). Default empty: no
	// signature. A secret: never printed.
	Secret string `koanf:"secret"`
}

// Log levels, log formats and trace exporters.
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"

	LogText = "text"
	LogJSON = "json"

	ExporterNone   = "none"
	ExporterStdout = "stdout"
	ExporterOTLP   = "otlp"
)

// Observability configures logs, metrics and traces.
type Observability struct {
	Log     Log     `koanf:"log"`
	Metrics Metrics `koanf:"metrics"`
	Tracing Tracing `koanf:"tracing"`
}

// Log configures the service's logger.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `koanf:"level"`
	// Format is text (default) or json.
	Format string `koanf:"format"`
}

// Metrics configures the Prometheus metrics served at /metrics.
type Metrics struct {
	// Disabled turns the message and publish metrics off (they are on by
	// default; Go and process metrics stay).
	Disabled bool `koanf:"disabled"`
}

// Tracing configures OpenTelemetry traces. The W3C trace context
// (traceparent) is propagated whatever the exporter.
type Tracing struct {
	// Exporter is none (default: spans are not recorded), stdout or otlp.
	Exporter string `koanf:"exporter"`
	// Endpoint is the OTLP/HTTP collector, host:port; required for otlp.
	Endpoint string `koanf:"endpoint"`
	// Insecure sends OTLP over plain HTTP (a local collector).
	Insecure bool `koanf:"insecure"`
	// SampleRatio is the share of new traces recorded, in [0,1]. Default 1.
	// A trace continued from a caller follows the caller's decision.
	SampleRatio float64 `koanf:"sample_ratio"`
}
