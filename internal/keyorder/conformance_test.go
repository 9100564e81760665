package keyorder_test

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/eventfx/eventfx/internal/kafkatest"
)

// TestConformance runs Watermill's universal Pub/Sub suite (pubsub/tests),
// in its short mode, against the subscriber on the embedded broker, with a
// kgo publisher of the test wire format.
func TestConformance(t *testing.T) {
	addr := kafkatest.Broker(t)
	topic := func(tctx tests.TestContext) string { return "keyorder-" + string(tctx.TestID) }

	t.Run("unkeyed", func(t *testing.T) {
		t.Parallel()
		features := tests.Features{
			// Each subscriber consumes in the group it is given: every
			// group gets every message, members of a group share them.
			ConsumerGroups: true,
			// At least once: a rebalance, a drain that gives up or a
			// crash redelivers what was not committed.
			ExactlyOnceDelivery: false,
			// Order holds per key only; unkeyed messages share one
			// lane per partition, and there are several partitions.
			GuaranteedOrder:                     false,
			GuaranteedOrderWithSingleSubscriber: false,
			// The log outlives every client: a new member continues
			// from the group's commits.
			Persistent: true,
			// All subscribers of one test share the test's group, so a
			// new one does not re-read what the group consumed;
			// TestNewSubscriberReceivesOldMessages runs below with a
			// group per subscriber.
			NewSubscriberReceivesOldMessages: false,
			// The broker lives in this process; there is no command to
			// restart it, so TestReconnect is skipped.
			RestartServiceCommand: nil,
			RequireSingleInstance: false,
			// A Go context does not travel over Kafka.
			ContextPreserved:  false,
			GenerateTopicFunc: topic,
			ForceShort:        true,
		}
		tests.TestPubSub(t, features,
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return pubSub(t, addr, testGroup(t), nil)
			},
			func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				return pubSub(t, addr, group, nil)
			})
	})

	t.Run("keyed", func(t *testing.T) {
		t.Parallel()
		// Every message keyed by its payload, which is where the order
		// test puts each message's type: a key's messages must arrive in
		// publish order, across the suite's ten members and their
		// rebalances, and a key's next message must wait for the ack of
		// the previous one (TestNoAck: both of its messages share the
		// payload "x").
		features := tests.Features{
			ConsumerGroups:    true,
			GuaranteedOrder:   true,
			Persistent:        true,
			GenerateTopicFunc: topic,
			ForceShort:        true,
		}
		newPubSub := func(t *testing.T) (message.Publisher, message.Subscriber) {
			return pubSub(t, addr, testGroup(t), kafkatest.KeyByPayload)
		}
		t.Run("TestPublishSubscribeInOrder", func(t *testing.T) {
			t.Parallel()
			tests.TestPublishSubscribeInOrder(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, newPubSub)
		})
		t.Run("TestNoAck", func(t *testing.T) {
			t.Parallel()
			tests.TestNoAck(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, newPubSub)
		})
	})

	t.Run("group per subscriber", func(t *testing.T) {
		t.Parallel()
		// A subscriber in a new group starts at the oldest record
		// (ResetOffset's default), so it receives every message
		// published before.
		features := tests.Features{
			ConsumerGroups:                   true,
			Persistent:                       true,
			NewSubscriberReceivesOldMessages: true,
			GenerateTopicFunc:                topic,
			ForceShort:                       true,
		}
		tests.TestNewSubscriberReceivesOldMessages(t, tests.TestContext{TestID: tests.NewTestID(), Features: features},
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return pubSub(t, addr, kafkatest.Unique("conformance"), nil)
			})
	})
}

// testGroup is the consumer group of every pub/sub one test of the suite
// creates: the suite expects them to share one (TestContinueAfterSubscribeClose
// continues where a closed subscriber stopped), and a group per test keeps
// the parallel tests from rebalancing each other.
func testGroup(t *testing.T) string {
	return "conformance." + strings.ReplaceAll(t.Name(), "/", ".")
}

// pubSub is a test publisher and a subscriber consuming in group on the
// broker at addr. prepare, if not nil, rewrites each message before it is
// published. The subscriber is closed at cleanup if the test did not.
func pubSub(t *testing.T, addr, group string, prepare func(*message.Message) *message.Message) (message.Publisher, message.Subscriber) {
	t.Helper()
	sub := newSubscriber(t, testConfig(addr, group))
	return preparingPublisher{testPublisher: newTestPublisher(t, addr), prepare: prepare}, sub
}

// preparingPublisher rewrites messages with prepare before publishing them.
type preparingPublisher struct {
	testPublisher
	prepare func(*message.Message) *message.Message
}

func (p preparingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.prepare == nil {
		return p.testPublisher.Publish(topic, msgs...)
	}
	prepared := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		prepared[i] = p.prepare(m)
	}
	return p.testPublisher.Publish(topic, prepared...)
}
