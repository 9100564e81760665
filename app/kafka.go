package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/wmlog"
	"github.com/eventfx/eventfx/router"
)

// Transport is where messages travel: Kafka in production and on the
// embedded broker, in-memory in unit tests of a team's own logic.
type Transport interface {
	// Publisher is shared by everything in the service. Its Close is a
	// no-op: the transport closes the real publisher once, last.
	Publisher() message.Publisher
	// Subscriber returns the subscriber of one handler, consuming in the
	// spec's consumer group and mode.
	Subscriber(spec router.SubscriberSpec) (message.Subscriber, error)
	// Brokers are the bootstrap brokers once started (the embedded
	// broker's address when configured so); nil for the in-memory transport.
	Brokers() []string
	// Start connects (and starts the embedded broker, if configured).
	Start(ctx context.Context) error
	// Close closes the publisher and the embedded broker. Idempotent.
	Close() error
}

// Kafka is the Kafka transport: watermill-kafka (Sarama) publisher and
// subscribers configured from config.Config, on the brokers of the config or
// on the process's embedded broker when kafka.brokers is [embedded].
type Kafka struct {
	cfg    config.Config
	logger *slog.Logger
	wlog   watermill.LoggerAdapter

	mu      sync.Mutex
	brokers []string
	pub     *producer
	admin   sarama.Client // for Ping
	keySubs []*keySubscriber
	release func()
	closed  bool
	// stopWatch stops watch, which logs outages of the brokers.
	stopWatch chan struct{}
}

// NewKafka returns the Kafka transport; cfg must have its defaults applied.
// It does no I/O: Start connects.
func NewKafka(cfg config.Config, logger *slog.Logger) *Kafka {
	return &Kafka{cfg: cfg, logger: logger, wlog: wmlog.New(logger)}
}

// Brokers are the bootstrap brokers, known after Start.
func (k *Kafka) Brokers() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.brokers
}

// Start starts the embedded broker if configured and connects the publisher.
func (k *Kafka) Start(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pub != nil {
		return nil
	}
	brokers := k.cfg.Kafka.Brokers
	if len(brokers) == 1 && brokers[0] == config.Embedded {
		b, release, err := broker.Acquire()
		if err != nil {
			return err
		}
		k.release = release
		brokers = []string{b.Addr()}
		k.logger.Info("embedded Kafka broker", "addr", b.Addr())
	}
	k.brokers = brokers
	sc, err := SaramaConfig(k.cfg)
	if err != nil {
		k.releaseBroker()
		return err
	}
	// Connect once, with Sarama's metadata retries, so that a broker that
	// cannot be reached, trusted or logged into fails the start.
	check, err := sarama.NewClient(brokers, sc)
	if err != nil {
		k.releaseBroker()
		return connectError(brokers, k.cfg.Kafka, err)
	}
	_ = check.Close()
	pub, err := newProducer(k.cfg, brokers)
	if err != nil {
		k.releaseBroker()
		return err
	}
	k.pub = pub
	pc := *sc
	pc.Metadata.Full = false
	pc.Metadata.Retry.Max = 0
	if k.admin, err = sarama.NewClient(brokers, &pc); err != nil {
		_ = pub.Close()
		k.pub = nil
		k.releaseBroker()
		return connectError(brokers, k.cfg.Kafka, err)
	}
	k.stopWatch = make(chan struct{})
	go k.watch(k.stopWatch, brokers)
	return nil
}

// Ping reports whether a broker answers a metadata request within ctx.
func (k *Kafka) Ping(ctx context.Context) error {
	k.mu.Lock()
	c := k.admin
	k.mu.Unlock()
	if c == nil {
		return errors.New("not connected")
	}
	done := make(chan error, 1)
	go func() { done <- c.RefreshMetadata() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka %v: %w", k.brokers, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka %v: no answer: %w", k.brokers, ctx.Err())
	}
}

func (k *Kafka) releaseBroker() {
	if k.release != nil {
		k.release()
		k.release = nil
	}
}

// connectError says what failing to reach the brokers most likely means.
func connectError(brokers []string, k config.Kafka, err error) error {
	if !errors.Is(err, sarama.ErrOutOfBrokers) {
		return fmt.Errorf("connect to Kafka %v: %w", brokers, err)
	}
	var hints []string
	if k.SASL.Mechanism != "" {
		hints = append(hints, fmt.Sprintf("with SASL %s as user %q, wrong credentials (a broker closes the connection when authentication fails)", k.SASL.Mechanism, k.SASL.Username))
	}
	if k.TLS.Enabled {
		hints = append(hints, "with TLS, a certificate the broker or eventfx does not trust (kafka.tls.ca_file, cert_file, key_file)")
	}
	if len(hints) == 0 {
		return fmt.Errorf("connect to Kafka %v: no broker answered: %w", brokers, err)
	}
	return fmt.Errorf("connect to Kafka %v: no broker accepted the connection; likely causes: %s: %w", brokers, strings.Join(hints, "; "), err)
}

// Publisher returns the shared publisher (see Transport).
func (k *Kafka) Publisher() message.Publisher { return sharedPublisher{k} }

type sharedPublisher struct{ k *Kafka }

func (p sharedPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.k.mu.Lock()
	pub := p.k.pub
	p.k.mu.Unlock()
	if pub == nil {
		return errors.New("kafka publisher not started (or already closed)")
	}
	err := pub.Publish(topic, msgs...)
	if TooLarge(err) {
		// Trying again cannot make a message smaller.
		return handlers.Permanent(err)
	}
	return err
}

func (sharedPublisher) Close() error { return nil }

// TooLarge reports whether a publish failed because a message is larger
// than the producer's batch limit or the broker's max.message.bytes.
func TooLarge(err error) bool { return errors.Is(err, kerr.MessageTooLarge) }

// Subscriber returns a subscriber as spec says: by partition
// (watermill-kafka) or by key (keySubscriber); an empty Consume is
// kafka.consume, a zero MaxInFlight kafka.max_in_flight. Its client is
// created on Subscribe, so it may be called before Start.
func (k *Kafka) Subscriber(spec router.SubscriberSpec) (message.Subscriber, error) {
	spec.Consume = cmp.Or(spec.Consume, k.cfg.Kafka.Consume)
	spec.MaxInFlight = cmp.Or(spec.MaxInFlight, k.cfg.Kafka.MaxInFlight)
	switch spec.Consume {
	case config.ConsumeKey:
		if spec.ConsumerGroup == "" {
			return nil, errors.New("kafka subscriber: key mode needs a consumer group")
		}
		s := &keySubscriber{k: k, spec: spec}
		k.mu.Lock()
		k.keySubs = append(k.keySubs, s)
		k.mu.Unlock()
		return s, nil
	case config.ConsumePartition, "":
		return &kafkaSubscriber{k: k, group: spec.ConsumerGroup, tracker: newDrainTracker()}, nil
	}
	return nil, fmt.Errorf("kafka subscriber: consume %q: must be %q or %q", spec.Consume, config.ConsumePartition, config.ConsumeKey)
}

// Close closes the publisher, then releases the embedded broker.
func (k *Kafka) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	if k.stopWatch != nil {
		close(k.stopWatch)
	}
	var err error
	if k.pub != nil {
		err = k.pub.Close()
		k.pub = nil
	}
	if k.admin != nil {
		err = errors.Join(err, k.admin.Close())
		k.admin = nil
	}
	k.releaseBroker()
	return err
}

// kafkaSubscriber creates its watermill-kafka subscriber lazily (the
// brokers are known after Start) and drains natively (router.Drainer).
// Draining needs a consumer group: without one (group ""), Drain returns at
// once and Close discards what is in flight.
type kafkaSubscriber struct {
	k       *Kafka
	group   string
	tracker *drainTracker

	mu     sync.Mutex
	subs   []*kafka.Subscriber
	closed bool
}

func (s *kafkaSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sc, err := SaramaConfig(s.k.cfg)
	if err != nil {
		return nil, err
	}
	// NewSubscriber does no I/O: check, create and record under one lock,
	// so a concurrent Close cannot miss the new subscriber.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("kafka subscriber closed")
	}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               s.k.Brokers(),
		Unmarshaler:           trackingUnmarshaler{s.tracker},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         s.group,
		Tracer:                tracer{s.tracker},
	}, s.k.wlog)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("kafka subscriber %s: %w", s.group, err)
	}
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	// A Close from here on closes sub, and its Subscribe then fails.
	return sub.Subscribe(ctx, topic)
}

func (s *kafkaSubscriber) Drain(ctx context.Context) error { return s.tracker.Drain(ctx) }

// Joined reports whether the subscriber's consumer group was joined (its
// partitions assigned); it is false during a rebalance.
func (s *kafkaSubscriber) Joined() error {
	if s.group == "" || s.tracker.sessions.Load() > 0 {
		return nil
	}
	return fmt.Errorf("consumer group %s: not joined (starting or rebalancing)", s.group)
}

func (s *kafkaSubscriber) Close() error {
	s.tracker.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, sub := range s.subs {
		errs = append(errs, sub.Close())
	}
	return errors.Join(errs...)
}

var _ router.Drainer = (*kafkaSubscriber)(nil)

// SaramaConfig is the Sarama configuration of eventfx's consumers
// (watermill-kafka) and of its connection check, for cfg. The choices,
// against Sarama's defaults:
//   - initial offset from kafka.initial_offset (Sarama: newest);
//   - offsets auto-committed every kafka.commit_interval and flushed when
//     a session ends (rebalance, graceful stop), so a crash redelivers at
//     most one interval of handled messages;
//   - session/heartbeat/rebalance timeouts from config;
//   - fetches: Sarama's defaults (ChannelBufferSize 1024, Fetch.Default
//     8 MB and MaxProcessingTime 1 s were benchmarked in
//     internal/benchmarks and did not move the rate);
//   - TLS and SASL (PLAIN, SCRAM-SHA-256/512) from kafka.tls and kafka.sasl.
//
// Producing is franz-go's (producerOpts).
func SaramaConfig(cfg config.Config) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = cfg.Service
	sc.Version = sarama.V2_8_0_0
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
	if err := applySecurity(sc, cfg.Kafka); err != nil {
		return nil, err
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sarama config: %w", err)
	}
	return sc, nil
}
