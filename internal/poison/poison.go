// Package poison models and operates eventfx's poison queue on Kafka: a
// poisoned message as read from the poison topic (Parse), the record that
// replays it to its original topic (Record.ReplayRecord), and the replay
// ledger, which remembers which poison records were already replayed so
// that none is replayed twice by separate runs. Fingerprint and GroupID
// sort poisoned messages into groups, classes of failure: one handler, one
// original topic, one Fingerprint of the reason. A Client (Dial) lists a
// poison topic (List), groups it (Stats) and replays it, all of it or a
// group (Replay): what `eventfx poison list`, `eventfx poison stats` and
// `eventfx poison replay` do, for any program.
//
// The header names are those of the wire contract (internal/meta and
// docs/guarantees.md).
package poison

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/meta"
)

// IDHeader is the message ID header: watermill-kafka's UUIDHeaderKey,
// spelled out so that the CLI does not link Sarama.
const IDHeader = "_watermill_message_uuid"

// Unknown marks an original partition or offset that the poison record does
// not name.
const Unknown = -1

// Record is a poisoned message as it sits on the poison topic: where the
// poison record is, the facts its poison headers state, and the original
// message (key, payload, headers).
//
// Parse never fails: a header that is missing leaves its field zero (or
// Unknown), and a header that cannot be read is named in Problems, so that
// listing a poison topic shows every record, however it was written.
type Record struct {
	// PoisonTopic, PoisonPartition and PoisonOffset locate the poison record.
	PoisonTopic     string
	PoisonPartition int32
	PoisonOffset    int64

	// ID is the message ID (_watermill_message_uuid). When the record has
	// none but names its original partition and offset, it is the stable ID
	// "<topic>-<partition>-<offset>" eventfx gives messages of other
	// producers, so the replayed message keeps the ID its handler saw.
	ID string
	// Topic is the original topic (topic_poisoned), where replay sends it.
	Topic string
	// Handler is the handler that gave up on it (handler_poisoned).
	Handler string
	// Subscriber is Watermill's subscriber_poisoned header.
	Subscriber string
	// Reason is the handler's final error (reason_poisoned).
	Reason string
	// Attempts is how many times it was tried (eventfx_attempts); 0 when
	// the header is missing or not a number.
	Attempts int
	// PoisonedAt is when it was poisoned (eventfx_poisoned_at); zero when
	// the header is missing or not RFC 3339.
	PoisonedAt time.Time
	// Timestamp is the poison record's Kafka timestamp: when it was
	// written to the poison topic, by the writer's clock (or the broker's,
	// for a topic with LogAppendTime). Record.Seen falls back to it.
	Timestamp time.Time
	// CorrelationID is the correlation_id header.
	CorrelationID string
	// Key is the Kafka key (the partition key); nil when none.
	Key []byte
	// Partition and Offset locate the original record; Unknown when the
	// headers do not say.
	Partition int32
	Offset    int64
	// ConsumerGroup is the group that consumed it (eventfx_consumer_group).
	ConsumerGroup string
	// Service is the service whose handler poisoned it (eventfx_service).
	// A record written before that header existed has, instead, the
	// prefix of ConsumerGroup before ".<Handler>": the service, or
	// kafka.consumer_group when that was set. "" when neither says.
	Service string
	// Replayed is how many times the message had been replayed before it
	// was poisoned this time (eventfx_replayed; 0 when absent).
	Replayed int
	// Payload is the message payload, untouched.
	Payload []byte
	// Headers are all the record's headers, in order, as read.
	Headers []kgo.RecordHeader
	// Problems lists headers whose values could not be read, as
	// "header: problem".
	Problems []string
	// AlreadyReplayed says whether a replay already sent this poison
	// record back (the replay ledger has its entry). Client.List sets it;
	// Parse, which does not read the ledger, leaves it false.
	AlreadyReplayed bool
}

// Parse reads a record of the poison topic. It never fails and never
// panics; see Record.
func Parse(r *kgo.Record) Record {
	p := Record{
		PoisonTopic:     r.Topic,
		PoisonPartition: r.Partition,
		PoisonOffset:    r.Offset,
		Partition:       Unknown,
		Offset:          Unknown,
		Payload:         r.Value,
		Headers:         r.Headers,
		Timestamp:       r.Timestamp,
	}
	if len(r.Key) > 0 {
		p.Key = r.Key
	}
	// With duplicate headers, the last one wins, as when Watermill reads
	// them into metadata.
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case IDHeader:
			p.ID = v
		case meta.TopicPoisoned:
			p.Topic = v
		case meta.HandlerPoisoned:
			p.Handler = v
		case meta.SubscriberPoisoned:
			p.Subscriber = v
		case meta.ReasonPoisoned:
			p.Reason = v
		case meta.CorrelationID:
			p.CorrelationID = v
		case meta.ConsumerGroup:
			p.ConsumerGroup = v
		case meta.Service:
			p.Service = v
		case meta.Attempts:
			p.Attempts = p.nonNegative(h.Key, v, 0)
		case meta.Replayed:
			p.Replayed = p.nonNegative(h.Key, v, 0)
		case meta.OriginalPartition:
			p.Partition = int32(p.nonNegative(h.Key, v, Unknown))
		case meta.OriginalOffset:
			p.Offset = int64(p.nonNegative(h.Key, v, Unknown))
		case meta.PoisonedAt:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				p.problem(h.Key, "not an RFC 3339 time: %q", v)
				t = time.Time{}
			}
			p.PoisonedAt = t
		}
	}
	if p.Service == "" && p.Handler != "" {
		if prefix, ok := strings.CutSuffix(p.ConsumerGroup, "."+p.Handler); ok {
			p.Service = prefix
		}
	}
	if p.ID == "" && p.Topic != "" && p.Partition != Unknown && p.Offset != Unknown {
		p.ID = fmt.Sprintf("%s-%d-%d", p.Topic, p.Partition, p.Offset)
	}
	return p
}

// nonNegative parses a header holding a count or a position; otherwise it
// notes a problem and returns def. Values above what an int32 holds are
// refused too, so that a partition always fits its type.
func (p *Record) nonNegative(key, v string, def int) int {
	bits := 64
	if key == meta.OriginalPartition || key == meta.Attempts || key == meta.Replayed {
		bits = 32
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil || n < 0 {
		p.problem(key, "not a non-negative integer: %q", v)
		return def
	}
	return int(n)
}

func (p *Record) problem(key, format string, args ...any) {
	p.Problems = append(p.Problems, key+": "+fmt.Sprintf(format, args...))
}

// ErrNotReplayable is wrapped by the error of Replayable and ReplayRecord
// for a poison record that cannot be replayed.
var ErrNotReplayable = errors.New("not replayable")

// Replayable reports why the record cannot be replayed, or nil: it must name
// a valid original topic, other than the poison topic itself (replaying
// there would only poison it again).
func (p Record) Replayable() error {
	switch {
	case p.Topic == "":
		return fmt.Errorf("%w: no %s header", ErrNotReplayable, meta.TopicPoisoned)
	case p.Topic == p.PoisonTopic:
		return fmt.Errorf("%w: original topic %q is the poison topic", ErrNotReplayable, p.Topic)
	}
	if err := config.ValidTopicName(p.Topic); err != nil {
		return fmt.Errorf("%w: original topic: %v", ErrNotReplayable, err)
	}
	return nil
}

// ReplayRecord returns the record that replays the poisoned message to its
// original topic: the same key, payload and headers — so the same ID and
// correlation ID — without the poison headers (meta.PoisonHeaders), with the
// ID header set when the ID was derived, with eventfx_replayed counting
// this replay (Replayed+1), and with eventfx_replay_for naming the consumer
// group that poisoned it (ConsumerGroup), so that only that group's handler
// handles it again (meta.ReplayFor); a record that names no consumer group
// gets no eventfx_replay_for and reaches every consumer of the topic. The
// original order of the headers is kept.
func (p Record) ReplayRecord() (*kgo.Record, error) {
	return p.replayRecord(p.ConsumerGroup)
}

// replayRecord is ReplayRecord for the consumer group target: none when "".
func (p Record) replayRecord(target string) (*kgo.Record, error) {
	if err := p.Replayable(); err != nil {
		return nil, err
	}
	headers := make([]kgo.RecordHeader, 0, len(p.Headers)+3)
	hasID := false
	for _, h := range p.Headers {
		if h.Key == meta.Replayed || h.Key == meta.ReplayFor || slices.Contains(meta.PoisonHeaders, h.Key) {
			continue
		}
		if h.Key == IDHeader {
			if hasID {
				continue // one ID; Parse kept the last
			}
			hasID = true
			h.Value = []byte(p.ID)
		}
		headers = append(headers, h)
	}
	if !hasID && p.ID != "" {
		headers = append(headers, kgo.RecordHeader{Key: IDHeader, Value: []byte(p.ID)})
	}
	headers = append(headers, kgo.RecordHeader{Key: meta.Replayed, Value: []byte(strconv.Itoa(p.Replayed + 1))})
	if target != "" {
		headers = append(headers, kgo.RecordHeader{Key: meta.ReplayFor, Value: []byte(target)})
	}
	return &kgo.Record{Topic: p.Topic, Key: p.Key, Value: p.Payload, Headers: headers}, nil
}
