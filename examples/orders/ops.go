package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/handlers"
)

// The ops service watches the poison queue with a handler of its own,
// poison-desk, and replays what it is told to with its *app.Publisher: what
// `eventfx poison list` and `eventfx poison replay --handler H` do, with
// eventfx's public API only.

// The headers of the wire contract the desk reads and writes (README,
// "Middleware order and guarantees" and "Poison workflow").
const (
	// Poison headers, added by the poison queue; a replay removes them.
	headerReason        = "reason_poisoned"
	headerTopic         = "topic_poisoned"
	headerHandler       = "handler_poisoned"
	headerSubscriber    = "subscriber_poisoned"
	headerAttempts      = "eventfx_attempts"
	headerPoisonedAt    = "eventfx_poisoned_at"
	headerPartition     = "eventfx_original_partition"
	headerOffset        = "eventfx_original_offset"
	headerConsumerGroup = "eventfx_consumer_group"
	headerService       = "eventfx_service"
	// Replay headers: how many times the message was replayed, and the
	// consumer group it is replayed for (only the handler that failed it
	// runs it again).
	headerReplayed  = "eventfx_replayed"
	headerReplayFor = "eventfx_replay_for"
	// The correlation ID, set on every poisoned message.
	headerCorrelationID = "correlation_id"
)

// notCopied are the headers of a poisoned message that its replay does not
// carry over: the poison headers, and the replay headers it writes anew.
var notCopied = map[string]bool{
	headerReason: true, headerTopic: true, headerHandler: true, headerSubscriber: true,
	headerAttempts: true, headerPoisonedAt: true, headerPartition: true, headerOffset: true,
	headerConsumerGroup: true, headerService: true, headerReplayed: true, headerReplayFor: true,
	headerCorrelationID: true, // replayed with app.WithCorrelationID
}

// poisoned is a message of the poison queue, as the desk received it.
type poisoned struct {
	ID            string // the message ID, kept by the replay
	Topic         string // the original topic, where the replay goes
	Handler       string // the handler that gave up on it
	ConsumerGroup string // that handler's consumer group
	Reason        string
	Attempts      int
	CorrelationID string
	Key           string // the partition key: "" when none
	Replays       int    // how many times it had been replayed before
	Payload       []byte
	// Headers are the original message's other headers (content_type,
	// traceparent…), poison headers removed. The partition key is among
	// them too, under the name handlers.Key reads; app.WithKey sets it
	// again.
	Headers map[string]string

	replayed bool // the desk replayed it (its replay ledger)
}

func (p *poisoned) String() string {
	return fmt.Sprintf("%s topic=%s handler=%s attempts=%d reason=%q correlation_id=%s",
		p.ID, p.Topic, p.Handler, p.Attempts, p.Reason, p.CorrelationID)
}

// desk is the ops service's record of the poison queue.
type desk struct {
	poisonTopic string
	mu          sync.Mutex
	records     []*poisoned
	changed     chan struct{}
}

func newDesk(poisonTopic string) *desk {
	return &desk{poisonTopic: poisonTopic, changed: make(chan struct{}, 1)}
}

// handler is poison-desk: it consumes the poison topic and records each
// message with its poison headers. It never fails — a failure of its own
// would be poisoned, back onto the topic it reads — and it emits nothing:
// no handler may emit to the poison topic.
func (d *desk) handler() handlers.Handler {
	return handlers.New("poison-desk", d.poisonTopic, d.record, handlers.WithCodec(raw{}))
}

func (d *desk) record(ctx context.Context, payload []byte) error {
	p := &poisoned{
		ID:            handlers.MessageID(ctx),
		Topic:         handlers.Header(ctx, headerTopic),
		Handler:       handlers.Header(ctx, headerHandler),
		ConsumerGroup: handlers.Header(ctx, headerConsumerGroup),
		Reason:        handlers.Header(ctx, headerReason),
		Attempts:      count(handlers.Header(ctx, headerAttempts)),
		CorrelationID: handlers.Header(ctx, headerCorrelationID),
		Key:           handlers.Key(ctx),
		Replays:       count(handlers.Header(ctx, headerReplayed)),
		Payload:       bytes.Clone(payload),
		Headers:       map[string]string{},
	}
	if msg, ok := handlers.MessageFromContext(ctx); ok {
		for name, value := range msg.Metadata {
			if !notCopied[name] {
				p.Headers[name] = value
			}
		}
	}
	d.mu.Lock()
	d.records = append(d.records, p)
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return nil
}

// count is a count header's value; 0 when absent or not a number.
func count(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// wait waits until the desk holds at least n messages and returns them, in
// the order they arrived (what `eventfx poison list` prints).
func (d *desk) wait(ctx context.Context, n int) ([]string, error) {
	for {
		d.mu.Lock()
		have := len(d.records)
		var lines []string
		if have >= n {
			for _, p := range d.records {
				lines = append(lines, p.String())
			}
		}
		d.mu.Unlock()
		if lines != nil {
			return lines, nil
		}
		select {
		case <-d.changed:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("poison queue: want %d messages, have %d: %w", n, have, ctx.Err())
		}
	}
}

// replaySummary counts what a replay did, as `eventfx poison replay`
// prints it.
type replaySummary struct {
	Replayed, AlreadyReplayed, Filtered, Unreplayable, Failed int
}

func (s replaySummary) String() string {
	skipped := s.AlreadyReplayed + s.Filtered + s.Unreplayable
	out := fmt.Sprintf("replayed %d, skipped %d (already replayed %d, filtered %d", s.Replayed, skipped, s.AlreadyReplayed, s.Filtered)
	if s.Unreplayable > 0 {
		out += fmt.Sprintf(", unreplayable %d", s.Unreplayable)
	}
	return out + fmt.Sprintf("), failed %d", s.Failed)
}

// replay republishes the messages handler poisoned, not yet replayed, to
// their original topic, as `eventfx poison replay --handler H` does: the
// same ID, key, payload, correlation ID and headers, without the poison
// headers, with eventfx_replayed counting this replay and
// eventfx_replay_for naming the consumer group that failed it, so that
// only that handler runs it again; the other handlers of the topic, which
// handled it the first time, skip it.
func (d *desk) replay(ctx context.Context, pub *app.Publisher, handler string) (replaySummary, error) {
	var sum replaySummary
	d.mu.Lock()
	var todo []*poisoned
	for _, p := range d.records {
		switch {
		case p.replayed:
			sum.AlreadyReplayed++
		case p.Handler != handler:
			sum.Filtered++
		case p.Topic == "" || p.Topic == d.poisonTopic:
			sum.Unreplayable++
		default:
			todo = append(todo, p)
		}
	}
	d.mu.Unlock()

	var failures []error
	for _, p := range todo {
		opts := []app.PublishOption{
			app.WithID(p.ID),
			app.WithCorrelationID(p.CorrelationID),
		}
		for name, value := range p.Headers {
			opts = append(opts, app.WithHeader(name, value))
		}
		opts = append(opts,
			app.WithKey(p.Key),
			app.WithHeader(headerReplayed, strconv.Itoa(p.Replays+1)))
		if p.ConsumerGroup != "" {
			opts = append(opts, app.WithHeader(headerReplayFor, p.ConsumerGroup))
		}
		if _, err := pub.Publish(ctx, p.Topic, p.Payload, opts...); err != nil {
			sum.Failed++
			failures = append(failures, fmt.Errorf("replay %s: %w", p.ID, err))
			continue
		}
		d.mu.Lock()
		p.replayed = true
		d.mu.Unlock()
		sum.Replayed++
	}
	if len(failures) > 0 {
		return sum, fmt.Errorf("%d messages not replayed: %v", len(failures), failures)
	}
	return sum, nil
}

// raw is the desk's codec: the payload as it came, whatever it is (a
// message may be poisoned because it is not JSON).
type raw struct{}

func (raw) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T is not []byte", v)
	}
	return b, nil
}

func (raw) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: %T is not *[]byte", v)
	}
	*b = data
	return nil
}

func (raw) ContentType() string { return "application/octet-stream" }
