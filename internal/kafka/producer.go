package kafka

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
)

// producer is the Kafka transport's message.Publisher: a franz-go client
// with eventfx's wire format (codec.go). A Publish of several messages
// is one batch: every record is handed to the client at once (it packs
// them into produce requests, several in flight per broker) and Publish
// returns when each was acknowledged, or with a *PublishError naming each
// that was not.
//
// It replaces watermill-kafka's publisher (Sarama's sync producer), which
// sends the messages of a Publish one at a time, each waiting for its
// acknowledgement; KafkaPublish in internal/benchmarks measures the two
// side by side with the raw franz-go client (docs/performance.md).
type producer struct {
	cl *kgo.Client
}

// Kafka's default max.message.bytes (broker and topic): a batch of records
// must fit in it.
const kafkaMaxMessageBytes = 1048588

// producerOpts are the producer's client options for cfg:
//   - acks from all in-sync replicas with the idempotent producer
//     (kafka.acks: all), or from the leader only;
//   - no linger: a lone message goes at once; under load, records batch
//     up while earlier requests are in flight;
//   - batches up to Kafka's default max.message.bytes, or larger when
//     publisher.max_body_bytes asks for more (the broker must allow it);
//   - keys placed by kafka.partitioner / kafka.partitioners (partitioner);
//   - a record fails after recordRetries tries (when the client can fail it
//     safely: the idempotent producer never leaves a gap) or, at the
//     latest, deliveryTimeout after it was published; a dead broker
//     fails a publish in about a second, as Sarama's retries did;
//   - the connection: client ID, TLS and SASL.
func producerOpts(cfg config.Config, conn connection, brokers []string) []kgo.Opt {
	batch := max(kafkaMaxMessageBytes, cfg.Publisher.MaxBodyBytes+16<<10)
	opts := append(conn.franz(brokers),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(int32(min(batch, math.MaxInt32))),
		kgo.RecordRetries(recordRetries),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	)
	if cfg.Kafka.Acks == config.AcksLeader {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	return opts
}

// recordRetries and deliveryTimeout bound how long a record may wait for
// its acknowledgement (broker down, leader moving) before its publish
// fails; the caller (a handler's retry, a gateway client) tries again.
const (
	recordRetries   = 5
	deliveryTimeout = 10 * time.Second
)

func newProducer(cfg config.Config, conn connection, brokers []string) (*producer, error) {
	cl, err := kgo.NewClient(producerOpts(cfg, conn, brokers)...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &producer{cl: cl}, nil
}

// publish writes msgs to topic, in order per partition, and waits for all
// the acknowledgements or for ctx to end (transport.Publisher's
// PublishContext). The records carry ctx: those the client has not sent
// when it ends fail with its error; those in a request already get the
// broker's answer, which nobody waits for any more.
func (p *producer) publish(ctx context.Context, topic string, msgs []*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	b := &batch{topic: topic, total: len(msgs), done: make(chan struct{})}
	b.left.Store(int64(len(msgs)))
	for i, m := range msgs {
		p.cl.Produce(ctx, record(topic, m), func(_ *kgo.Record, err error) { b.acked(i, m.UUID, err) })
	}
	select {
	case <-b.done:
		return b.err()
	case <-ctx.Done():
		return fmt.Errorf("no acknowledgement yet (the write may still land): %w", ctx.Err())
	}
}

// batch collects the acknowledgements of one publish; done is closed by
// the last.
type batch struct {
	topic  string
	total  int
	left   atomic.Int64
	done   chan struct{}
	mu     sync.Mutex
	failed []FailedMessage
}

func (b *batch) acked(i int, id string, err error) {
	if err != nil {
		b.mu.Lock()
		b.failed = append(b.failed, FailedMessage{Index: i, ID: id, Err: err})
		b.mu.Unlock()
	}
	if b.left.Add(-1) == 0 {
		close(b.done)
	}
}

// err is the publish's *PublishError once done is closed; nil when every
// message was acknowledged.
func (b *batch) err() error {
	if len(b.failed) == 0 {
		return nil
	}
	slices.SortFunc(b.failed, func(x, y FailedMessage) int { return x.Index - y.Index })
	return &PublishError{Topic: b.topic, Total: b.total, Failed: b.failed}
}

// Close waits up to closeFlush for what is being published, then closes
// the client. Records still not acknowledged then fail: a Publish waiting
// for them returns an error, and one whose caller gave up already
// returned one. Nothing is dropped silently.
func (p *producer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeFlush)
	defer cancel()
	_ = p.cl.Flush(ctx) // what it could not flush fails below
	p.cl.Close()
	return nil
}

// closeFlush bounds how long Close waits for records in flight.
const closeFlush = 5 * time.Second

// PublishError is returned by a publish to Kafka when some of its messages
// were not acknowledged; the others were written. Retrying just the failed
// ones (same IDs) is safe for consumers that deduplicate by ID.
type PublishError struct {
	Topic string
	// Total is the number of messages in the publish.
	Total int
	// Failed lists the messages not written, in publish order.
	Failed []FailedMessage
}

// FailedMessage is one message a publish did not write.
type FailedMessage struct {
	// Index is the message's position in the publish call.
	Index int
	ID    string
	Err   error
}

func (e *PublishError) Error() string {
	const show = 3
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d message(s) not written to %s", len(e.Failed), e.Total, e.Topic)
	for i, f := range e.Failed {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-show)
			break
		}
		fmt.Fprintf(&b, "; %s: %v", f.ID, f.Err)
	}
	return b.String()
}

// Unwrap returns the failed messages' errors, for errors.Is and errors.As.
func (e *PublishError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}
