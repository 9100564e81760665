package router_test

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

func TestRetryAttempts(t *testing.T) {
	transient := errors.New("busy")
	tests := []struct {
		name         string
		policy       config.Retry
		failures     int
		err          error
		wantCalls    int
		wantAttempts int // of the final AttemptsError; 0 = success
	}{
		{"succeeds first time", fastRetry(3), 0, transient, 1, 0},
		{"fails twice then succeeds", fastRetry(3), 2, transient, 3, 0},
		{"always fails", fastRetry(3), 100, transient, 4, 4},
		{"no retries", fastRetry(config.NoRetries), 100, transient, 1, 1},
		{"permanent error", fastRetry(3), 100, handlers.Permanent(transient), 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, calls := failing(tt.failures, tt.err)
			_, err := router.Retry(tt.policy, "h", quiet)(h)(message.NewMessage("m", nil))
			var ae *router.AttemptsError
			if tt.wantAttempts > 0 {
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, tt.wantAttempts, ae.Attempts)
			} else {
				assert.NoError(t, err)
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
	_, _ = router.Retry(fastRetry(2), "h", quiet)(h)(message.NewMessage("m", nil))
	assert.Equal(t, []int{1, 2, 3}, seen)
}

func TestRetryHonoursRetryAfterCappedAtMaxInterval(t *testing.T) {
	h, _ := failing(1, handlers.RetryAfter(errors.New("429"), 80*time.Millisecond))
	start := time.Now()
	_, err := router.Retry(config.Retry{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: time.Second}, "h", quiet)(h)(message.NewMessage("m", nil))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond, "waited at least Retry-After")

	// A hint above max_interval is capped: with a one-hour hint and a 1ms cap the
	// retry happens at once, so this returns instead of hanging.
	h, calls := failing(1, handlers.RetryAfter(errors.New("503"), time.Hour))
	_, err = router.Retry(config.Retry{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}, "h", quiet)(h)(message.NewMessage("m", nil))
	require.NoError(t, err)
	assert.Equal(t, 2, *calls)
}

func TestRetryStopsWhenMessageContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := func(msg *message.Message) ([]*message.Message, error) {
		cancel() // shutdown starts during the first attempt
		return nil, errors.New("busy")
	}
	msg := message.NewMessage("m", nil)
	msg.SetContext(ctx)
	_, err := router.Retry(config.Retry{MaxRetries: 5, InitialInterval: time.Hour, MaxInterval: time.Hour}, "h", quiet)(h)(msg)
	var ae *router.AttemptsError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 1, ae.Attempts)
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

func poisonOf(pub message.Publisher) message.HandlerMiddleware {
	return router.Poison(router.PoisonConfig{Topic: "poison", Handler: "h", ConsumerGroup: "svc.h", Publisher: pub, Logger: quiet})
}

func TestPoisonKeepsMessageAndAddsHeaders(t *testing.T) {
	pub := &recorder{}
	msg := message.NewMessage("m1", []byte("payload"))
	msg.Metadata.Set("correlation_id", "c1")
	msg.Metadata.Set("custom", "kept")
	h := func(*message.Message) ([]*message.Message, error) {
		return nil, &router.AttemptsError{Err: errors.New("line one\nline two"), Attempts: 6}
	}
	produced, err := poisonOf(pub)(h)(msg)
	require.NoError(t, err, "a poisoned message is acknowledged")
	assert.Empty(t, produced)
	require.Len(t, pub.msgs["poison"], 1)
	p := pub.msgs["poison"][0]
	assert.Equal(t, "m1", p.UUID)
	assert.Equal(t, "payload", string(p.Payload))
	assert.Equal(t, "c1", p.Metadata.Get("correlation_id"))
	assert.Equal(t, "kept", p.Metadata.Get("custom"))
	assert.Equal(t, "line one line two", p.Metadata.Get("reason_poisoned"))
	assert.Equal(t, "6", p.Metadata.Get("eventfx_attempts"))
	assert.Equal(t, "h", p.Metadata.Get("handler_poisoned"))
	assert.Equal(t, "svc.h", p.Metadata.Get("eventfx_consumer_group"))
	_, err = time.Parse(time.RFC3339, p.Metadata.Get("eventfx_poisoned_at"))
	assert.NoError(t, err)
	assert.Empty(t, msg.Metadata.Get("reason_poisoned"), "the original message is not modified")
}

func TestPoisonSkipsMessagesInterruptedByShutdown(t *testing.T) {
	pub := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg := message.NewMessage("m1", nil)
	msg.SetContext(ctx)
	h := func(*message.Message) ([]*message.Message, error) { return nil, errors.New("context canceled") }
	_, err := poisonOf(pub)(h)(msg)
	assert.ErrorIs(t, err, router.ErrInterrupted)
	assert.ErrorIs(t, err, context.Canceled, "Watermill's router does not log it as a failure")
	assert.Empty(t, pub.msgs)
}

func TestPoisonPublishFailureNacks(t *testing.T) {
	pub := &recorder{err: errors.New("broker down")}
	h := func(*message.Message) ([]*message.Message, error) { return nil, errors.New("bad") }
	_, err := poisonOf(pub)(h)(message.NewMessage("m1", nil))
	assert.ErrorContains(t, err, "broker down")
}

func TestRecovererTurnsPanicIntoOneLineError(t *testing.T) {
	h := func(*message.Message) ([]*message.Message, error) { panic("first\nsecond") }
	_, err := router.Recoverer("h", quiet)(h)(message.NewMessage("m", nil))
	assert.EqualError(t, err, "panic: first second")
}

func TestCorrelationIDKeptGeneratedAndCopied(t *testing.T) {
	emit := func(*message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage("out", nil)}, nil
	}
	in := message.NewMessage("in", nil)
	in.Metadata.Set("correlation_id", "c1")
	out, err := router.CorrelationID(emit)(in)
	require.NoError(t, err)
	assert.Equal(t, "c1", out[0].Metadata.Get("correlation_id"))

	// A message without one starts a conversation named after it.
	bare := message.NewMessage("in", nil)
	out, err = router.CorrelationID(emit)(bare)
	require.NoError(t, err)
	assert.Equal(t, "in", bare.Metadata.Get("correlation_id"))
	assert.Equal(t, "in", out[0].Metadata.Get("correlation_id"))

	// Without a message ID either, it gets a random one.
	anonymous := message.NewMessage("", nil)
	out, err = router.CorrelationID(emit)(anonymous)
	require.NoError(t, err)
	id := anonymous.Metadata.Get("correlation_id")
	_, perr := uuid.Parse(id)
	assert.NoError(t, perr, "generated correlation ID %q", id)
	assert.Equal(t, id, out[0].Metadata.Get("correlation_id"))
}

func TestTimeoutCancelsAttemptAndIsOffWhenZero(t *testing.T) {
	var deadline bool
	h := func(msg *message.Message) ([]*message.Message, error) {
		_, deadline = msg.Context().Deadline()
		return nil, nil
	}
	_, _ = router.Timeout(0)(h)(message.NewMessage("m", nil))
	assert.False(t, deadline, "no timer when the timeout is off")

	block := func(msg *message.Message) ([]*message.Message, error) {
		<-msg.Context().Done()
		return nil, msg.Context().Err()
	}
	_, err := router.Timeout(10 * time.Millisecond)(block)(message.NewMessage("m", nil))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "attempt timed out after 10ms")
}

// The attempt's context is built lazily (no timer until Done is called):
// it must still behave as context.WithTimeout does.
func TestTimeoutContextBehavesAsWithTimeout(t *testing.T) {
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
		_, err := router.Timeout(5 * time.Millisecond)(spin)(message.NewMessage("m", nil))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, "attempt timed out after 5ms")
	})
	t.Run("derived contexts are cancelled at the deadline", func(t *testing.T) {
		derived := func(msg *message.Message) ([]*message.Message, error) {
			ctx, cancel := context.WithCancel(msg.Context())
			defer cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}
		_, err := router.Timeout(10 * time.Millisecond)(derived)(message.NewMessage("m", nil))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
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
		_, err := router.Timeout(time.Hour)(wait)(msg)
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
		_, err := router.Timeout(time.Hour)(keep)(message.NewMessage("m", nil))
		require.NoError(t, err)
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
	in := message.NewMessage("in", nil)
	in.Metadata.Set("correlation_id", "c1")
	in.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

	pub := &recorder{}
	produced, err := router.Emit("events", pub)(emit)(in)
	require.NoError(t, err)
	assert.Empty(t, produced, "nothing left for Watermill to publish outside the chain")
	require.Len(t, pub.msgs["events"], 1)
	assert.Equal(t, "c1", pub.msgs["events"][0].Metadata.Get("correlation_id"))
	assert.Equal(t, in.Metadata.Get("traceparent"), pub.msgs["events"][0].Metadata.Get("traceparent"))

	_, err = router.Emit("events", &recorder{err: errors.New("broker down")})(emit)(in)
	assert.ErrorContains(t, err, "broker down", "a failed publish fails the attempt")
	assert.False(t, handlers.IsPermanent(err), "and is retried")

	_, err = router.Emit("", pub)(emit)(in)
	assert.True(t, handlers.IsPermanent(err), "messages returned without a publish topic are a wiring bug")
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
	run := router.Chain(cfg, h, "svc.h", pub, quiet)(h.Func)

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
		return router.Chain(cfg, h, router.ConsumerGroup(cfg, name), pub, quiet, observer)(h.Func)
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
