// Package kafka is eventfx's Kafka transport: one adapter over the two
// client libraries eventfx uses, watermill-kafka (Sarama) for consuming by
// partition and franz-go for producing and for consuming by key
// (internal/keyorder). Everything they share is read once from the config
// (connection: client ID, TLS, SASL, partitioner), decoded and encoded by
// one codec (the wire format), and reported in one set of words
// (Unreachable).
package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/transport"
	"github.com/eventfx/eventfx/internal/wmlog"
)

// Transport is the Kafka transport: a franz-go producer shared by the
// service and a subscriber per handler, on the brokers of the config or on
// the process's embedded broker when kafka.brokers is [embedded].
type Transport struct {
	cfg    config.Config
	conn   connection
	logger *slog.Logger
	wlog   watermill.LoggerAdapter

	mu      sync.Mutex
	brokers []string
	pub     *producer
	keySubs []*keySubscriber
	release func()
	closed  bool
	// stopWatch stops watch, which logs outages of the brokers.
	stopWatch chan struct{}
}

var _ transport.Transport = (*Transport)(nil)

// New returns the Kafka transport of a service configured by cfg (its
// defaults applied here). It does no I/O: Start connects. It fails on
// connection settings it cannot use (a TLS file it cannot read).
func New(cfg config.Config, logger *slog.Logger) (*Transport, error) {
	cfg = cfg.WithDefaults()
	conn, err := connectionOf(cfg.Kafka, cfg.Service)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Transport{cfg: cfg, conn: conn, logger: logger, wlog: wmlog.New(logger)}, nil
}

// Brokers are the bootstrap brokers, known after Start.
func (k *Transport) Brokers() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.brokers
}

// System is "kafka", the OpenTelemetry messaging.system.
func (k *Transport) System() string { return "kafka" }

// startTimeout bounds Start's first contact with the brokers.
const startTimeout = 10 * time.Second

// Start starts the embedded broker if configured, connects the producer
// and waits until a broker answers, so that a broker that cannot be
// reached, trusted or logged into fails the start (in Unreachable's words).
func (k *Transport) Start(ctx context.Context) error {
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
	pub, err := newProducer(k.cfg, k.conn, brokers)
	if err != nil {
		k.releaseBroker()
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := pub.cl.Ping(pctx); err != nil {
		_ = pub.Close()
		k.releaseBroker()
		if ctx.Err() != nil {
			return fmt.Errorf("connect to Kafka: %w", ctx.Err())
		}
		return Unreachable(brokers, k.cfg.Kafka, err)
	}
	k.pub = pub
	k.stopWatch = make(chan struct{})
	go k.watch(k.stopWatch, brokers)
	return nil
}

// Ping reports whether a broker answers a metadata request within ctx.
func (k *Transport) Ping(ctx context.Context) error {
	k.mu.Lock()
	pub := k.pub
	k.mu.Unlock()
	if pub == nil {
		return errors.New("not connected")
	}
	if err := pub.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka %v: %w", k.Brokers(), err)
	}
	return nil
}

func (k *Transport) releaseBroker() {
	if k.release != nil {
		k.release()
		k.release = nil
	}
}

// Publisher returns the shared publisher (see transport.Transport).
func (k *Transport) Publisher() transport.Publisher { return sharedPublisher{k} }

type sharedPublisher struct{ k *Transport }

func (p sharedPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.PublishContext(context.Background(), topic, msgs...)
}

func (p sharedPublisher) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	p.k.mu.Lock()
	pub := p.k.pub
	p.k.mu.Unlock()
	if pub == nil {
		return errors.New("kafka publisher not started (or already closed)")
	}
	err := pub.publish(ctx, topic, msgs)
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
func (k *Transport) Subscriber(spec transport.Spec) (transport.Subscriber, error) {
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
		return &partitionSubscriber{k: k, group: spec.ConsumerGroup, tracker: newDrainTracker()}, nil
	}
	return nil, fmt.Errorf("kafka subscriber: consume %q: must be %q or %q", spec.Consume, config.ConsumePartition, config.ConsumeKey)
}

// Close closes the publisher, then releases the embedded broker.
func (k *Transport) Close() error {
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
	k.releaseBroker()
	return err
}
