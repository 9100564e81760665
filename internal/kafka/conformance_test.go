package kafka_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/transport"
)

// conformanceCase is one transport configuration under Watermill's suite.
type conformanceCase struct {
	name        string
	features    tests.Features
	pubSub      tests.PubSubConstructor
	groupPubSub tests.ConsumerGroupPubSubConstructor // nil without consumer groups
}

// TestConformance runs Watermill's universal Pub/Sub suite (pubsub/tests)
// against every transport eventfx offers: the Kafka transport on the
// embedded broker, built as a service builds it (eventfx's Sarama config,
// wire marshaler and drain tracker), and the in-memory transport.
//
// By default the suite runs in its short mode (tens of messages per test).
// With EVENTFXTEST_LONG=1, and not -short, it runs full size (thousands
// of messages, tens of subscribers per test) and also on a Kafka subscriber
// without consumer group.
func TestConformance(t *testing.T) {
	addr := kafkatest.Broker(t)
	long := longTests()

	cases := []conformanceCase{
		{
			name: "kafka",
			features: tests.Features{
				// Each subscriber consumes in the group it is given: every
				// group gets every message, members of a group share them.
				ConsumerGroups: true,
				// At-least-once: a rebalance or a crash redelivers what was
				// handled but not yet committed (up to kafka.commit_interval).
				ExactlyOnceDelivery: false,
				// Order holds per partition, hence per key. The suite
				// publishes unkeyed messages, which our marshaler spreads
				// over the partitions (nil key), so there is no overall
				// order; kafka/keyed checks the per-key order.
				GuaranteedOrder: false,
				// The log outlives every client: a new instance in the same
				// group continues from the group's committed offsets.
				Persistent: true,
				// All subscribers of one test share the test's group, so a
				// new one does not re-read what the group consumed.
				NewSubscriberReceivesOldMessages: false,
				// The broker lives in this process; there is no command to
				// restart it, so TestReconnect is skipped.
				RestartServiceCommand: nil,
				// A Go context does not travel over Kafka.
				ContextPreserved: false,
				ForceShort:       !long,
			},
			pubSub: func(t *testing.T) (message.Publisher, message.Subscriber) {
				return kafkaPubSub(t, addr, testGroup(t), config.ConsumePartition, nil)
			},
			groupPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				return kafkaPubSub(t, addr, group, config.ConsumePartition, nil)
			},
		},
		{
			name: "kafka/keyed",
			features: tests.Features{
				ConsumerGroups:      true,
				ExactlyOnceDelivery: false,
				// Every message is keyed by its payload, as app.WithKey
				// keys it: a key maps to one partition, and a partition is
				// consumed one message at a time by one member, so each
				// key's messages arrive in publish order, across
				// rebalances too. That is the order eventfx promises;
				// TestPublishSubscribeInOrder and TestNoAck check it.
				GuaranteedOrder:                  true,
				Persistent:                       true,
				NewSubscriberReceivesOldMessages: false,
				ContextPreserved:                 false,
				ForceShort:                       !long,
			},
			pubSub: func(t *testing.T) (message.Publisher, message.Subscriber) {
				return kafkaPubSub(t, addr, testGroup(t), config.ConsumePartition, kafkatest.KeyByPayload)
			},
			groupPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				return kafkaPubSub(t, addr, group, config.ConsumePartition, kafkatest.KeyByPayload)
			},
		},
		{
			// kafka.consume: key (internal/keyorder on franz-go): the keys
			// of a partition in parallel, each key in order.
			name: "kafka/key-mode",
			features: tests.Features{
				ConsumerGroups:      true,
				ExactlyOnceDelivery: false,
				// Keyed by payload as in kafka/keyed: each key's messages
				// arrive in publish order, one at a time.
				GuaranteedOrder:                  true,
				Persistent:                       true,
				NewSubscriberReceivesOldMessages: false,
				ContextPreserved:                 false,
				ForceShort:                       !long,
			},
			pubSub: func(t *testing.T) (message.Publisher, message.Subscriber) {
				return kafkaPubSub(t, addr, testGroup(t), config.ConsumeKey, kafkatest.KeyByPayload)
			},
			groupPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				return kafkaPubSub(t, addr, group, config.ConsumeKey, kafkatest.KeyByPayload)
			},
		},
		{
			name: "memory",
			features: tests.Features{
				// Memory ignores the consumer group: every subscriber of a
				// topic gets every message (documented on transport.Memory).
				ConsumerGroups: false,
				// One process, nothing to recover: an acked message is
				// never delivered again (a nacked one is, as it should).
				ExactlyOnceDelivery: true,
				// Watermill's gochannel does not promise order.
				GuaranteedOrder: false,
				// Two Memory values share nothing, so the suite must reuse
				// its first instance instead of making new ones.
				Persistent:            false,
				RequireSingleInstance: true,
				// Memory replays a topic to a new subscriber of the same
				// instance, but the suite checks that across instances.
				NewSubscriberReceivesOldMessages: false,
				// Memory does not set gochannel's PreserveContext.
				ContextPreserved: false,
				ForceShort:       !long,
			},
			pubSub: skipKnownBugs(memoryPubSub, map[string]string{}),
		},
	}
	if long {
		// eventfx always subscribes in a group (routing.ConsumerGroup);
		// an empty one makes watermill-kafka read every partition from
		// kafka.initial_offset without a group, as watermill-kafka's own
		// suite checks in its long mode.
		cases = append(cases, conformanceCase{
			name: "kafka/no-group",
			features: tests.Features{
				ConsumerGroups:                   false,
				ExactlyOnceDelivery:              false,
				GuaranteedOrder:                  false,
				Persistent:                       true,
				NewSubscriberReceivesOldMessages: true,
				ContextPreserved:                 false,
			},
			pubSub: func(t *testing.T) (message.Publisher, message.Subscriber) {
				return kafkaPubSub(t, addr, "", config.ConsumePartition, nil)
			},
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tests.TestPubSub(t, tc.features, tc.pubSub, tc.groupPubSub)
		})
	}
}

// longTests reports whether the full-size suite was asked for.
func longTests() bool {
	return !testing.Short() && os.Getenv("EVENTFXTEST_LONG") == "1"
}

// testGroup is the consumer group of every pub/sub one test of the suite
// creates: the suite expects them to share one (TestContinueAfterSubscribeClose
// continues where a closed subscriber stopped), and a group per test keeps
// the parallel tests from rebalancing each other.
func testGroup(t *testing.T) string {
	return "conformance." + strings.ReplaceAll(t.Name(), "/", ".")
}

// conformanceLogger shows the transports' warnings and errors only.
func conformanceLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// kafkaPubSub is one instance of the Kafka transport on the broker at addr:
// its publisher's Close closes the transport (the transport's own shared
// publisher has a no-op Close, by design), its subscriber consumes in group.
// prepare, if not nil, rewrites each message before it is published. Both
// are closed at cleanup if the test did not close them.
func kafkaPubSub(t *testing.T, addr, group, consume string, prepare func(*message.Message) *message.Message) (message.Publisher, message.Subscriber) {
	t.Helper()
	cfg := kafkatest.Config(addr)
	cfg.Kafka.Consume = consume
	k, err := kafka.New(cfg, conformanceLogger())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, k.Start(ctx), "start the Kafka transport on %s", addr)
	sub, err := k.Subscriber(transport.Spec{ConsumerGroup: group})
	require.NoError(t, err, "Kafka subscriber of group %q", group)
	t.Cleanup(func() {
		if err := sub.Close(); err != nil {
			t.Errorf("close the subscriber of group %q: %v", group, err)
		}
		if err := k.Close(); err != nil {
			t.Errorf("close the Kafka transport: %v", err)
		}
	})
	return transportPublisher{Publisher: k.Publisher(), close: k.Close, prepare: prepare}, sub
}

// memoryPubSub is one in-memory transport; its publisher's Close closes it.
func memoryPubSub(t *testing.T) (message.Publisher, message.Subscriber) {
	t.Helper()
	m := transport.NewMemory(conformanceLogger())
	sub, err := m.Subscriber(transport.Spec{ConsumerGroup: testGroup(t)})
	require.NoError(t, err, "memory subscriber")
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the memory transport: %v", err)
		}
	})
	return transportPublisher{Publisher: m.Publisher(), close: m.Close}, sub
}

// transportPublisher is a transport's shared publisher whose Close closes
// the transport, so the suite's pub.Close stops that instance.
type transportPublisher struct {
	message.Publisher
	close   func() error
	prepare func(*message.Message) *message.Message
}

func (p transportPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.prepare != nil {
		prepared := make([]*message.Message, len(msgs))
		for i, m := range msgs {
			prepared[i] = p.prepare(m)
		}
		msgs = prepared
	}
	return p.Publisher.Publish(topic, msgs...)
}

func (p transportPublisher) Close() error { return p.close() }

// skipKnownBugs skips the suite's tests named in bugs (test name → the bug
// that fails it) and runs the others on newPubSub. The suite calls the
// constructor first in each test, on the test's goroutine, which is where
// t.Skip may be called. Remove an entry once its bug is fixed.
func skipKnownBugs(newPubSub tests.PubSubConstructor, bugs map[string]string) tests.PubSubConstructor {
	return func(t *testing.T) (message.Publisher, message.Subscriber) {
		t.Helper()
		if reason, ok := bugs[suiteTest(t)]; ok {
			t.Skip(reason)
		}
		return newPubSub(t)
	}
}

// suiteTest is the name of the suite's test that t runs: the suite names
// its subtests <TestName>/<test ID>.
func suiteTest(t *testing.T) string {
	parts := strings.Split(t.Name(), "/")
	return parts[max(len(parts)-2, 0)]
}
