package routing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/router"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// failing returns a handler failing with err for its first n calls, and a
// pointer to its call count.
func failing(n int, err error) (message.HandlerFunc, *int) {
	calls := 0
	return func(msg *message.Message) ([]*message.Message, error) {
		calls++
		if calls <= n {
			return nil, err
		}
		return nil, nil
	}, &calls
}

func fastRetry(maxRetries int) config.Retry {
	return config.Retry{MaxRetries: maxRetries, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}
}

// chain is the chain of a handler "h" on topic "in" of service "svc",
// emitting to "events", with the retry policy r, publishing to pub; fn is
// the handler's function.
func chain(r config.Retry, pub message.Publisher, fn message.HandlerFunc) message.HandlerFunc {
	cfg := config.Config{Service: "svc", Retry: r}.WithDefaults()
	h := handlers.Handler{Name: "h", Topic: "in", PublishTopic: "events", Func: fn}
	return routing.Chain(cfg, h, "svc.h", pub, quiet)(fn)
}

// poisoned returns the only message of pub's poison topic.
func poisoned(t *testing.T, pub *recorder) *message.Message {
	t.Helper()
	require.Len(t, pub.msgs[config.DefaultPoisonTopic], 1, "one poisoned message")
	return pub.msgs[config.DefaultPoisonTopic][0]
}

func TestRetryAttempts(t *testing.T) {
	transient := errors.New("busy")
	tests := []struct {
		name         string
		policy       config.Retry
		failures     int
		err          error
		wantCalls    int
		wantAttempts string // of the poison record; "" = success
	}{
		{"succeeds first time", fastRetry(3), 0, transient, 1, ""},
		{"fails twice then succeeds", fastRetry(3), 2, transient, 3, ""},
		{"always fails", fastRetry(3), 100, transient, 4, "4"},
		{"no retries", fastRetry(config.NoRetries), 100, transient, 1, "1"},
		{"permanent error", fastRetry(3), 100, handlers.Permanent(transient), 1, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, calls := failing(tt.failures, tt.err)
			pub := &recorder{}
			_, err := chain(tt.policy, pub, h)(message.NewMessage("m", nil))
			require.NoError(t, err, "handled or poisoned: acknowledged")
			if tt.wantAttempts != "" {
				assert.Equal(t, tt.wantAttempts, poisoned(t, pub).Metadata.Get("eventfx_attempts"))
			} else {
				assert.Empty(t, pub.msgs[config.DefaultPoisonTopic])
			}
			assert.Equal(t, tt.wantCalls, *calls)
		})
	}
}

func TestRetryPutsAttemptInContext(t *testing.T) {
	var seen []int
	h := func(msg *message.Message) ([]*message.Message, error) {
		seen = append(seen, handlers.Attempt(msg.Context()))
		return nil, errors.New("again")
	}
	_, _ = chain(fastRetry(2), &recorder{}, h)(message.NewMessage("m", nil))
	assert.Equal(t, []int{1, 2, 3}, seen)
}

func TestRetryHonoursRetryAfterCappedAtMaxInterval(t *testing.T) {
	h, _ := failing(1, handlers.RetryAfter(errors.New("429"), 80*time.Millisecond))
	pub := &recorder{}
	start := time.Now()
	_, err := chain(config.Retry{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: time.Second}, pub, h)(message.NewMessage("m", nil))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond, "waited at least Retry-After")
	assert.Empty(t, pub.msgs, "the retry succeeded")

	// A hint above max_interval is capped: with a one-hour hint and a 1ms cap the
	// retry happens at once, so this returns instead of hanging.
	h, calls := failing(1, handlers.RetryAfter(errors.New("503"), time.Hour))
	_, err = chain(config.Retry{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}, pub, h)(message.NewMessage("m", nil))
	require.NoError(t, err)
	assert.Equal(t, 2, *calls)
}

// A delivery whose context ends (shutdown) is neither retried nor
// poisoned: the error goes up, the message is nacked and comes again after
// the restart.
func TestShutdownDuringAnAttemptNacksWithoutRetryOrPoison(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	h := func(msg *message.Message) ([]*message.Message, error) {
		calls++
		cancel() // shutdown starts during the first attempt
		return nil, errors.New("busy")
	}
	msg := message.NewMessage("m", nil)
	msg.SetContext(ctx)
	pub := &recorder{}
	_, err := chain(config.Retry{MaxRetries: 5, InitialInterval: time.Hour, MaxInterval: time.Hour}, pub, h)(msg)
	assert.ErrorIs(t, err, routing.ErrInterrupted)
	assert.ErrorIs(t, err, context.Canceled, "Watermill's router does not log it as a failure")
	assert.Equal(t, 1, calls)
	assert.Empty(t, pub.msgs)
}

// recorder is a publisher that records what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs map[string][]*message.Message
	err  error
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if r.msgs == nil {
		r.msgs = map[string][]*message.Message{}
	}
	r.msgs[topic] = append(r.msgs[topic], msgs...)
	return nil
}

func (r *recorder) Close() error { return nil }

func TestPoisonKeepsMessageAndAddsHeaders(t *testing.T) {
	pub := &recorder{}
	msg := message.NewMessage("m1", []byte("payload"))
	msg.Metadata.Set("correlation_id", "c1")
	msg.Metadata.Set("custom", "kept")
	h, _ := failing(100, errors.New("line one\nline two"))
	produced, err := chain(fastRetry(5), pub, h)(msg)
	require.NoError(t, err, "a poisoned message is acknowledged")
	assert.Empty(t, produced)
	p := poisoned(t, pub)
	assert.Equal(t, "m1", p.UUID)
	assert.Equal(t, "payload", string(p.Payload))
	assert.Equal(t, "c1", p.Metadata.Get("correlation_id"))
	assert.Equal(t, "kept", p.Metadata.Get("custom"))
	assert.Equal(t, "line one line two", p.Metadata.Get("reason_poisoned"))
	assert.Equal(t, "6", p.Metadata.Get("eventfx_attempts"))
	assert.Equal(t, "h", p.Metadata.Get("handler_poisoned"))
	assert.Equal(t, "svc.h", p.Metadata.Get("eventfx_consumer_group"))
	assert.Equal(t, "svc", p.Metadata.Get("eventfx_service"))
	_, err = time.Parse(time.RFC3339, p.Metadata.Get("eventfx_poisoned_at"))
	assert.NoError(t, err)
	assert.Empty(t, msg.Metadata.Get("reason_poisoned"), "the original message is not modified")
}

func TestPoisonPublishFailureNacks(t *testing.T) {
	pub := &recorder{err: errors.New("broker down")}
	h, _ := failing(100, handlers.Permanent(errors.New("bad")))
	_, err := chain(fastRetry(0), pub, h)(message.NewMessage("m1", nil))
	assert.ErrorContains(t, err, "broker down")
	assert.ErrorContains(t, err, "handler error: bad")
}

func TestPanicIsAOneLineErrorRetriedThenPoisoned(t *testing.T) {
	calls := 0
	h := func(*message.Message) ([]*message.Message, error) { calls++; panic("first\nsecond") }
	pub := &recorder{}
	_, err := chain(fastRetry(1), pub, h)(message.NewMessage("m", nil))
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "a panic is retried like any error")
	assert.Equal(t, "panic: first second", poisoned(t, pub).Metadata.Get("reason_poisoned"))
}

func TestCorrelationIDIsKeptOnWhatTheHandlerEmits(t *testing.T) {
	emit := func(*message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage("out", nil)}, nil
	}
	in := message.NewMessage("in", nil)
	in.Metadata.Set("correlation_id", "c1")
	pub := &recorder{}
	_, err := chain(fastRetry(0), pub, emit)(in)
	require.NoError(t, err)
	require.Len(t, pub.msgs["events"], 1)
	assert.Equal(t, "c1", pub.msgs["events"][0].Metadata.Get("correlation_id"))
}

// attemptTimeout returns a retry policy without retries whose attempts
// last at most d.
func attemptTimeout(d time.Duration) config.Retry {
	return config.Retry{MaxRetries: config.NoRetries, AttemptTimeout: d}
}

func TestAttemptTimeoutCancelsTheAttempt(t *testing.T) {
	block := func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done()
		return nil, msg.Context().Err()
	}
	pub := &recorder{}
	_, err := chain(attemptTimeout(10*time.Millisecond), pub, block)(message.NewMessage("m", nil))
	require.NoError(t, err, "poisoned")
	assert.Contains(t, poisoned(t, pub).Metadata.Get("reason_poisoned"), "attempt timed out after 10ms: context deadline exceeded")
}

// The attempt's context is built lazily (no timer until Done is called):
// it must still behave as context.WithTimeout does.
func TestAttemptContextBehavesAsWithTimeout(t *testing.T) {
	// reason runs fn in a chain whose attempts last at most d and returns
	// the reason it was poisoned with, "" when it succeeded.
	reason := func(t *testing.T, d time.Duration, msg *message.Message, fn message.HandlerFunc) string {
		pub := &recorder{}
		_, err := chain(attemptTimeout(d), pub, fn)(msg)
		require.NoError(t, err)
		if len(pub.msgs) == 0 {
			return ""
		}
		return poisoned(t, pub).Metadata.Get("reason_poisoned")
	}
	t.Run("deadline passes without anyone waiting", func(t *testing.T) {
		spin := func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			d, ok := ctx.Deadline()
			require.True(t, ok)
			for time.Now().Before(d.Add(time.Millisecond)) {
				time.Sleep(time.Millisecond) // a handler that never looks at Done
			}
			return nil, ctx.Err()
		}
		assert.Equal(t, "attempt timed out after 5ms: context deadline exceeded", reason(t, 5*time.Millisecond, message.NewMessage("m", nil), spin))
	})
	t.Run("derived contexts are cancelled at the deadline", func(t *testing.T) {
		derived := func(msg *message.Message) ([]*message.Message, error) {
			ctx, cancel := context.WithCancel(msg.Context())
			defer cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}
		assert.Contains(t, reason(t, 10*time.Millisecond, message.NewMessage("m", nil), derived), "context deadline exceeded")
	})
	t.Run("the parent's cancellation goes through, and is not a timeout", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		msg := message.NewMessage("m", nil)
		msg.SetContext(parent)
		wait := func(msg *message.Message) ([]*message.Message, error) {
			cancel()
			<-msg.Context().Done()
			return nil, msg.Context().Err()
		}
		_, err := chain(attemptTimeout(time.Hour), &recorder{}, wait)(msg)
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotContains(t, err.Error(), "timed out")
		assert.Equal(t, parent, msg.Context(), "the message gets its context back")
	})
	t.Run("the context ends when the attempt returns", func(t *testing.T) {
		var kept context.Context
		keep := func(msg *message.Message) ([]*message.Message, error) {
			kept = msg.Context()
			return nil, nil
		}
		assert.Empty(t, reason(t, time.Hour, message.NewMessage("m", nil), keep))
		assert.ErrorIs(t, kept.Err(), context.Canceled)
		select {
		case <-kept.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done of an ended attempt's context is not closed")
		}
	})
}

func TestEmitPublishesWithinTheAttempt(t *testing.T) {
	emit := func(msg *message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage("out", []byte("e"))}, nil
	}
	in := func() *message.Message {
		m := message.NewMessage("in", nil)
		m.Metadata.Set("correlation_id", "c1")
		m.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		return m
	}

	pub := &recorder{}
	produced, err := chain(fastRetry(0), pub, emit)(in())
	require.NoError(t, err)
	assert.Empty(t, produced, "nothing left for Watermill to publish outside the chain")
	require.Len(t, pub.msgs["events"], 1)
	assert.Equal(t, "c1", pub.msgs["events"][0].Metadata.Get("correlation_id"))
	assert.Equal(t, in().Metadata.Get("traceparent"), pub.msgs["events"][0].Metadata.Get("traceparent"))

	// A failed publish fails the attempt, which is retried: here the
	// broker is down for the poison topic too, so the message is nacked.
	calls := 0
	counted := func(msg *message.Message) ([]*message.Message, error) { calls++; return emit(msg) }
	_, err = chain(fastRetry(2), &recorder{err: errors.New("broker down")}, counted)(in())
	assert.ErrorContains(t, err, "broker down")
	assert.Equal(t, 3, calls, "a failed publish is retried")

	// Messages returned without a publish topic are a wiring bug: permanent.
	noTopic := handlers.Handler{Name: "h", Topic: "in", Func: emit}
	pub = &recorder{}
	calls = 0
	_, err = routing.Chain(config.Config{Retry: fastRetry(2)}.WithDefaults(), noTopic, "svc.h", pub, quiet)(counted)(in())
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "not retried")
	assert.Contains(t, poisoned(t, pub).Metadata.Get("reason_poisoned"), "handler returned 1 message(s) but has no publish topic")
}

// A message without a correlation ID starts a conversation named after it:
// the handler, what it emits and its poison record all see its own ID, and
// the chain does not write the ID into the incoming message. A message
// without an ID either is given a random one.
func TestChainNamesTheConversationOfAMessageWithoutCorrelationID(t *testing.T) {
	cfg := config.Config{}.WithDefaults()
	cfg.Retry = fastRetry(0)
	pub := &recorder{}
	var seen []string
	h := handlers.Handler{Name: "h", Topic: "in", PublishTopic: "events", Func: func(msg *message.Message) ([]*message.Message, error) {
		seen = append(seen, handlers.CorrelationID(msg.Context()))
		if string(msg.Payload) == "fail" {
			return nil, handlers.Permanent(errors.New("bad"))
		}
		return []*message.Message{message.NewMessage("out", nil)}, nil
	}}
	run := routing.Chain(cfg, h, "svc.h", pub, quiet)(h.Func)

	in := message.NewMessage("in-1", []byte("ok"))
	_, err := run(in)
	require.NoError(t, err)
	assert.Equal(t, []string{"in-1"}, seen)
	require.Len(t, pub.msgs["events"], 1)
	assert.Equal(t, "in-1", pub.msgs["events"][0].Metadata.Get("correlation_id"))
	assert.Empty(t, in.Metadata.Get("correlation_id"), "the incoming message is not written to")

	bad := message.NewMessage("in-2", []byte("fail"))
	_, err = run(bad)
	require.NoError(t, err, "poisoned and acknowledged")
	require.Len(t, pub.msgs[config.DefaultPoisonTopic], 1)
	assert.Equal(t, "in-2", pub.msgs[config.DefaultPoisonTopic][0].Metadata.Get("correlation_id"))

	anonymous := message.NewMessage("", []byte("ok"))
	_, err = run(anonymous)
	require.NoError(t, err)
	id := anonymous.Metadata.Get("correlation_id")
	_, perr := uuid.Parse(id)
	require.NoError(t, perr, "random correlation ID %q", id)
	assert.Equal(t, id, seen[2])
	assert.Equal(t, id, pub.msgs["events"][1].Metadata.Get("correlation_id"))
}

// A replayed message names the consumer group it is for: the handler of
// that group runs it (and what it emits, or its poison record, does not
// carry the target on); another handler acknowledges it without running it
// or telling its observers.
func TestChainHandlesAReplayOnlyInItsTargetGroup(t *testing.T) {
	cfg := config.Config{Service: "svc"}.WithDefaults()
	cfg.Retry = fastRetry(0)
	var observed []string
	observer := func(router.HandlerInfo) router.Hooks {
		return router.Hooks{
			Received: func(msg *message.Message) { observed = append(observed, "received "+msg.UUID) },
			Delivered: func(msg *message.Message, _ router.Outcome, _ int) {
				observed = append(observed, "delivered "+msg.UUID)
			},
		}
	}
	chain := func(name string, pub message.Publisher, calls *[]string) message.HandlerFunc {
		h := handlers.Handler{Name: name, Topic: "in", PublishTopic: "events", Func: func(msg *message.Message) ([]*message.Message, error) {
			*calls = append(*calls, msg.UUID)
			if string(msg.Payload) == "fail" {
				return nil, handlers.Permanent(errors.New("bad"))
			}
			return []*message.Message{message.NewMessage("out-"+msg.UUID, nil)}, nil
		}}
		return routing.Chain(cfg, h, routing.ConsumerGroup(cfg, name), pub, quiet, observer)(h.Func)
	}
	replay := func(id, payload, group string) *message.Message {
		msg := message.NewMessage(id, []byte(payload))
		msg.Metadata.Set("eventfx_replay_for", group)
		return msg
	}
	pub := &recorder{}
	var billed, shipped []string
	bill, ship := chain("bill", pub, &billed), chain("ship", pub, &shipped)

	for _, run := range []message.HandlerFunc{bill, ship} {
		_, err := run(replay("r-1", "ok", "svc.bill"))
		require.NoError(t, err, "acknowledged by both")
	}

	assert.Equal(t, []string{"r-1"}, billed, "the target group's handler ran it")
	assert.Empty(t, shipped, "another group's handler did not")
	assert.Equal(t, []string{"received r-1", "delivered r-1"}, observed, "observers saw only the handling")
	require.Len(t, pub.msgs["events"], 1)
	assert.Empty(t, pub.msgs["events"][0].Metadata.Get("eventfx_replay_for"), "not carried onto emitted events")

	_, err := bill(replay("r-2", "fail", "svc.bill"))
	require.NoError(t, err, "poisoned")
	poisoned := pub.msgs[config.DefaultPoisonTopic]
	require.Len(t, poisoned, 1)
	assert.Empty(t, poisoned[0].Metadata.Get("eventfx_replay_for"), "not carried onto the poison record")
	assert.Equal(t, "svc.bill", poisoned[0].Metadata.Get("eventfx_consumer_group"))
	assert.Equal(t, "svc", poisoned[0].Metadata.Get("eventfx_service"))

	_, err = ship(message.NewMessage("m-3", []byte("ok")))
	require.NoError(t, err)
	assert.Equal(t, []string{"m-3"}, shipped, "a message that is no replay reaches every handler")
}
