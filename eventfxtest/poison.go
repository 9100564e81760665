package eventfxtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/transport"
)

// Poisoned is a message found on the poison topic, with what its poison
// headers say.
type Poisoned struct {
	*message.Message
	// Reason is the handler's final error.
	Reason string
	// Topic is the topic the message was consumed from.
	Topic string
	// Handler is the handler that gave up on it.
	Handler string
	// Attempts is how many times the handler tried it; 0 when the header
	// is missing or not a number.
	Attempts int
}

// Poisoned waits for the first n poisoned messages and returns them. If
// fewer are poisoned within the timeout, it fails the test with those that
// were.
func (e *Env) Poisoned(n int) []Poisoned {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	var ps []Poisoned
	var err error
	if e.poison != nil {
		ps, err = e.poison.wait(ctx, n)
	} else {
		var msgs []*message.Message
		msgs, err = e.read(ctx, e.cfg.Poison.Topic, n)
		ps = parseAll(msgs)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.t.Fatalf("eventfxtest: Poisoned: want %d poisoned message(s) within %s, got %d%s", n, e.timeout, len(ps), listPoisoned(ps))
	case err != nil:
		e.t.Fatalf("eventfxtest: Poisoned: %v", err)
	}
	return ps
}

// NoPoison fails the test, saying what was poisoned, if the poison topic
// holds anything now. Call it after Stop to include the messages still in
// flight.
func (e *Env) NoPoison() {
	e.t.Helper()
	ps, err := e.poisonedNow()
	switch {
	case err != nil:
		e.t.Fatalf("eventfxtest: NoPoison: read the poison topic: %v", err)
	case len(ps) > 0:
		e.t.Fatalf("eventfxtest: NoPoison: %s", summarize(ps))
	}
}

// poisonedNow returns what the poison topic holds now.
func (e *Env) poisonedNow() ([]Poisoned, error) {
	if e.poison != nil {
		return e.poison.all(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	n, err := e.count(ctx, e.cfg.Poison.Topic)
	if err != nil || n == 0 {
		return nil, err
	}
	msgs, err := e.read(ctx, e.cfg.Poison.Topic, int(n))
	if err != nil {
		return nil, fmt.Errorf("read %d message(s): %w", n, err)
	}
	return parseAll(msgs), nil
}

// meanwhile says, for the failure of a wait, what was poisoned.
func (e *Env) meanwhile() string {
	ps, err := e.poisonedNow()
	if err != nil {
		return fmt.Sprintf("the poison topic could not be read: %v", err)
	}
	return summarize(ps)
}

// summarize says what was poisoned: "nothing was poisoned", "1 message was
// poisoned: handler …", or "2 messages were poisoned:" and a line each.
func summarize(ps []Poisoned) string {
	switch len(ps) {
	case 0:
		return "nothing was poisoned"
	case 1:
		return "1 message was poisoned: " + ps[0].String()
	}
	return fmt.Sprintf("%d messages were poisoned%s", len(ps), listPoisoned(ps))
}

func listPoisoned(ps []Poisoned) string {
	var b strings.Builder
	for i, p := range ps {
		if i == 0 {
			b.WriteString(":")
		}
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// String says which handler gave up on the message, on which topic, why
// and after how many attempts.
func (p Poisoned) String() string {
	attempts := "attempts unknown"
	switch {
	case p.Attempts == 1:
		attempts = "1 attempt"
	case p.Attempts > 1:
		attempts = fmt.Sprintf("%d attempts", p.Attempts)
	}
	return fmt.Sprintf("handler %q on %q: %s (%s)", p.Handler, p.Topic, p.Reason, attempts)
}

func parseAll(msgs []*message.Message) []Poisoned {
	out := make([]Poisoned, len(msgs))
	for i, m := range msgs {
		out[i] = parsePoisoned(m)
	}
	return out
}

// parsePoisoned reads a poison record's headers as `eventfx poison list`
// does (poison.Parse), whichever transport carried it.
func parsePoisoned(m *message.Message) Poisoned {
	r := &kgo.Record{Value: m.Payload}
	for k, v := range m.Metadata {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	p := poison.Parse(r)
	return Poisoned{Message: m, Reason: p.Reason, Topic: p.Topic, Handler: p.Handler, Attempts: p.Attempts}
}

// memoryTransport is the in-memory transport with a publisher that records
// what it publishes to the poison topic: the in-memory topics are gone once
// the app stops, and NoPoison is often called after Stop.
type memoryTransport struct {
	transport.Transport
	pub transport.Publisher
}

func newMemoryTransport(lc fx.Lifecycle, l *slog.Logger, log *poisonLog) transport.Transport {
	m := transport.NewMemory(l)
	lc.Append(fx.Hook{OnStop: func(context.Context) error { return m.Close() }})
	return memoryTransport{Transport: m, pub: recordingPublisher{Publisher: m.Publisher(), log: log}}
}

func (t memoryTransport) Publisher() transport.Publisher { return t.pub }

type recordingPublisher struct {
	transport.Publisher
	log *poisonLog
}

func (p recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.PublishContext(context.Background(), topic, msgs...)
}

func (p recordingPublisher) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	if err := p.Publisher.PublishContext(ctx, topic, msgs...); err != nil {
		return err
	}
	if topic == p.log.topic {
		p.log.add(msgs)
	}
	return nil
}

// poisonLog is what the in-memory poison topic was sent, in order. It is
// safe for concurrent use.
type poisonLog struct {
	topic string
	mu    sync.Mutex
	msgs  []*message.Message
}

func (l *poisonLog) add(msgs []*message.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		l.msgs = append(l.msgs, m.Copy())
	}
}

func (l *poisonLog) all() []Poisoned {
	l.mu.Lock()
	defer l.mu.Unlock()
	return parseAll(l.msgs)
}

// wait returns the first n poisoned messages, or those there are and ctx's
// error.
func (l *poisonLog) wait(ctx context.Context, n int) ([]Poisoned, error) {
	for {
		ps := l.all()
		if len(ps) >= n {
			return ps[:n], nil
		}
		select {
		case <-ctx.Done():
			return ps, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
