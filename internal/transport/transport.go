// Package transport declares what eventfx's router, Publisher, readiness
// checks and tracing need of a message transport. Every capability is a
// method of Transport or of Subscriber, so a decorator that embeds the
// interface forwards all of them: none hides behind a type assertion.
//
// Two implementations exist: internal/kafka (Kafka, on brokers or on the
// embedded broker) and Memory here (Watermill's gochannel, for unit tests).
package transport

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Spec says how one handler consumes.
type Spec struct {
	// ConsumerGroup is the handler's consumer group.
	ConsumerGroup string
	// Consume is config.ConsumePartition or config.ConsumeKey; empty means
	// the transport's config (kafka.consume).
	Consume string
	// MaxInFlight bounds the messages in flight in key mode; 0 means the
	// transport's config (kafka.max_in_flight).
	MaxInFlight int
}

// Subscriber is the subscriber of one handler.
type Subscriber interface {
	message.Subscriber
	// Drain stops taking new messages and waits until every message
	// delivered was acknowledged and its offset marked for commit (or
	// nacked); it returns ctx's error if ctx ends first. Closing the
	// subscriber afterwards commits exactly what was handled. The router
	// drains every subscriber this one way; what is counted is the
	// consumption mode's: records handed and marked per claimed partition
	// (internal/kafka, by partition), messages outstanding per key
	// (internal/keyorder), messages forwarded and not yet acked (Gate, for
	// subscribers that cannot count by themselves).
	Drain(ctx context.Context) error
	// Joined is nil once the subscriber consumes: for Kafka, once its
	// consumer group was joined and partitions assigned (not during a
	// rebalance); for transports without groups, always.
	Joined() error
}

// Publisher is a transport's publisher: Watermill's, and a publish that
// ends with a context.
type Publisher interface {
	message.Publisher
	// PublishContext is Publish that returns when ctx ends before every
	// message was acknowledged, with an error wrapping ctx's: the messages
	// not yet sent then fail, those already sent may still land (a retry
	// with the same IDs lets consumers recognise them). It waits on the
	// caller's goroutine; it starts none.
	PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error
}

// Transport is where messages travel.
type Transport interface {
	// Publisher is shared by everything in the service. Its Close is a
	// no-op: the transport closes the real publisher once, last.
	Publisher() Publisher
	// Subscriber returns the subscriber of one handler, consuming in the
	// spec's consumer group and mode. It may be called before Start.
	Subscriber(spec Spec) (Subscriber, error)
	// Brokers are the bootstrap brokers once started (the embedded
	// broker's address when configured so); nil for transports without.
	Brokers() []string
	// Start connects (and starts the embedded broker, if configured).
	Start(ctx context.Context) error
	// Close closes the publisher and the embedded broker. Idempotent.
	Close() error
	// Ping reports whether a broker answers within ctx (readiness); nil
	// for transports without brokers.
	Ping(ctx context.Context) error
	// System is the transport's OpenTelemetry messaging.system ("kafka"),
	// or "" when its publishes are not traced as messaging.
	System() string
}
