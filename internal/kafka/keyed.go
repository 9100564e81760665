package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/keyorder"
	"github.com/eventfx/eventfx/internal/metrics"
	"github.com/eventfx/eventfx/internal/transport"
)

// keySubscriber is a handler's subscriber in key mode (kafka.consume: key):
// internal/keyorder's, on franz-go, created on the first Subscribe (the
// brokers are known after Start). It drains and reports its group like
// the partition-mode subscriber.
type keySubscriber struct {
	k    *Transport
	spec transport.Spec

	mu     sync.Mutex
	sub    *keyorder.Subscriber
	closed bool
}

var _ transport.Subscriber = (*keySubscriber)(nil)

// keyorderConfig is the key-ordered subscriber's configuration for a
// handler of a service configured by cfg, on brokers:
//   - the group, initial offset, group timings and commit interval of the
//     service's kafka block, TLS and SASL as the other clients;
//   - max_in_flight from the handler's spec;
//   - a revoked partition, or a closing subscriber, waits for its
//     in-flight messages up to half the rebalance timeout (a member still
//     draining when the rebalance times out would lose its partitions
//     uncommitted) and at most shutdown_timeout;
//   - records are read with the wire format of the partition mode.
func keyorderConfig(cfg config.Config, conn connection, spec transport.Spec, brokers []string) keyorder.Config {
	opts := append(conn.franz(brokers), kgo.AllowAutoTopicCreation())
	reset := kgo.NewOffset().AtStart()
	if cfg.Kafka.InitialOffset == config.OffsetNewest {
		reset = kgo.NewOffset().AtEnd()
	}
	return keyorder.Config{
		Brokers:           brokers,
		Group:             spec.ConsumerGroup,
		Opts:              opts,
		ResetOffset:       reset,
		MaxInFlight:       spec.MaxInFlight,
		CommitInterval:    cfg.Kafka.CommitInterval,
		SessionTimeout:    cfg.Kafka.SessionTimeout,
		HeartbeatInterval: cfg.Kafka.HeartbeatInterval,
		RebalanceTimeout:  cfg.Kafka.RebalanceTimeout,
		RevokeDrain:       min(cfg.Kafka.RebalanceTimeout/2, cfg.ShutdownTimeout),
		Unmarshal:         messageOf,
	}
}

func (s *keySubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("kafka subscriber closed")
	}
	if s.sub == nil {
		kc := keyorderConfig(s.k.cfg, s.k.conn, s.spec, s.k.Brokers())
		kc.Logger = s.k.logger
		var err error
		if s.sub, err = keyorder.New(kc); err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("kafka subscriber %s: %w", s.spec.ConsumerGroup, err)
		}
	}
	sub := s.sub
	s.mu.Unlock()
	return sub.Subscribe(ctx, topic)
}

func (s *keySubscriber) current() *keyorder.Subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sub
}

func (s *keySubscriber) Drain(ctx context.Context) error {
	if sub := s.current(); sub != nil {
		return sub.Drain(ctx)
	}
	return nil
}

func (s *keySubscriber) Joined() error {
	if sub := s.current(); sub != nil {
		return sub.Joined()
	}
	return fmt.Errorf("consumer group %s: not joined (starting or rebalancing)", s.spec.ConsumerGroup)
}

func (s *keySubscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	sub := s.sub
	s.mu.Unlock()
	if sub != nil {
		return sub.Close()
	}
	return nil
}

// stats is the subscriber's state, for metrics; ok is false before it
// subscribed.
func (s *keySubscriber) stats() (keyorder.Stats, bool) {
	if sub := s.current(); sub != nil {
		return sub.Stats(), true
	}
	return keyorder.Stats{}, false
}

// KeyModeGroups reports the state of the transport's key-mode subscribers
// (for metrics).
func (k *Transport) KeyModeGroups() []metrics.KeyModeGroup {
	k.mu.Lock()
	subs := slices.Clone(k.keySubs)
	k.mu.Unlock()
	var groups []metrics.KeyModeGroup
	for _, s := range subs {
		if st, ok := s.stats(); ok {
			groups = append(groups, metrics.KeyModeGroup{Group: s.spec.ConsumerGroup, Stats: st})
		}
	}
	return groups
}
