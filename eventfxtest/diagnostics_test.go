package eventfxtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/eventfxtest"
	"github.com/eventfx/eventfx/handlers"
)

// fakeTB is the testing.TB an Env under test fails: it records the
// failures instead of failing the test, and ends the goroutine on Fatalf
// as testing does. Run the code that may fail with do.
type fakeTB struct {
	testing.TB // the real test, for Logf, Name, TempDir, …

	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func newFakeTB(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	t.Cleanup(func() {
		for i := len(f.cleanups) - 1; i >= 0; i-- {
			for _, msg := range f.do(f.cleanups[i]) {
				t.Errorf("at cleanup: %s", msg)
			}
		}
	})
	return f
}

// do runs fn on its own goroutine, as a test body runs, and returns the
// failures it recorded.
func (f *fakeTB) do(fn func()) []string {
	f.mu.Lock()
	f.failures = nil
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) FailNow() {
	f.Errorf("FailNow")
	runtime.Goexit()
}

// transports are the rows of the tests that run on both transports, with
// the timeout of their waits (a wait meant to fail takes all of it).
var transports = []struct {
	name    string
	options []eventfxtest.Option
	timeout time.Duration
}{
	{"embedded broker", nil, 2 * time.Second},
	{"in memory", []eventfxtest.Option{eventfxtest.InMemory()}, 500 * time.Millisecond},
}

type Shipment struct {
	OrderID string `json:"order_id"`
}

func ship(context.Context, OrderPlaced) ([]Shipment, error) {
	return nil, handlers.Permanent(errors.New("out of stock"))
}

func TestWaitsSayWhatWasPoisonedMeanwhile(t *testing.T) {
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTB(t)
			var env *eventfxtest.Env
			require.Empty(t, f.do(func() {
				env = eventfxtest.New(f, append(tt.options, eventfxtest.Timeout(tt.timeout), eventfxtest.Modules(
					handlers.Register(handlers.NewEmitting("shipping", "orders", "shipments", ship)),
				))...)
				env.Publish("orders", OrderPlaced{ID: "o1", Amount: 5})
				env.Poisoned(1)
			}))
			poisoned := `handler "shipping" on "orders": out of stock (1 attempt)`

			assert.Equal(t, []string{fmt.Sprintf(`eventfxtest: Messages: want 1 message(s) on "shipments" within %s, got 0; `+
				`meanwhile 1 message was poisoned: %s`, tt.timeout, poisoned)},
				f.do(func() { env.Messages("shipments", 1) }))
			assert.Equal(t, []string{fmt.Sprintf(`eventfxtest: Eventually: not within %s: the shipment recorded; `+
				`meanwhile 1 message was poisoned: %s`, tt.timeout, poisoned)},
				f.do(func() { env.Eventually(func() bool { return false }, "the shipment recorded") }))
			assert.Equal(t, []string{fmt.Sprintf("eventfxtest: Poisoned: want 2 poisoned message(s) within %s, got 1:\n  %s", tt.timeout, poisoned)},
				f.do(func() { env.Poisoned(2) }))
		})
	}
}

func TestWaitsSayNothingWasPoisoned(t *testing.T) {
	f := newFakeTB(t)
	var env *eventfxtest.Env
	require.Empty(t, f.do(func() { env = eventfxtest.New(f, eventfxtest.InMemory(), eventfxtest.Timeout(100*time.Millisecond)) }))
	assert.Equal(t, []string{`eventfxtest: Messages: want 1 message(s) on "shipments" within 100ms, got 0; meanwhile nothing was poisoned`},
		f.do(func() { env.Messages("shipments", 1) }))
}

func TestNoPoisonSaysWhatWasPoisoned(t *testing.T) {
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTB(t)
			var env *eventfxtest.Env
			require.Empty(t, f.do(func() {
				env = eventfxtest.New(f, append(tt.options, eventfxtest.Modules(
					handlers.Register(handlers.NewEmitting("billing", "orders", "payments", bill)),
				))...)
				env.Publish("orders", OrderPlaced{ID: "o1", Amount: -1})
				env.Publish("orders", OrderPlaced{ID: "o2", Amount: -2})
				env.Poisoned(2)
				env.Stop()
			}))
			assert.Equal(t, []string{"eventfxtest: NoPoison: 2 messages were poisoned:\n" +
				`  handler "billing" on "orders": negative amount (1 attempt)` + "\n" +
				`  handler "billing" on "orders": negative amount (1 attempt)`},
				f.do(env.NoPoison))
		})
	}
}

func TestNoPoisonAfterARetriedSuccess(t *testing.T) {
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			env := eventfxtest.New(t, append(tt.options, eventfxtest.Modules(
				handlers.Register(handlers.New("flaky", "orders", func(context.Context, OrderPlaced) error {
					if calls.Add(1) < 3 {
						return errors.New("try again")
					}
					return nil
				})),
			))...)
			env.Publish("orders", OrderPlaced{ID: "o1", Amount: 1})
			env.Eventually(func() bool { return calls.Load() == 3 }, "third attempt")
			env.Stop() // drain: the message is done (acked or poisoned) before this returns
			env.NoPoison()
		})
	}
}

func TestCountNeedsTheEmbeddedBroker(t *testing.T) {
	f := newFakeTB(t)
	assert.Equal(t, []string{"eventfxtest: Count needs the embedded broker (not InMemory)"},
		f.do(func() { eventfxtest.New(f, eventfxtest.InMemory()).Count("orders") }))
}

type Ledger struct{}

func TestNewPutsTheRootCauseOfAnFxErrorFirst(t *testing.T) {
	noop := func(context.Context, OrderPlaced) error { return nil }
	tests := []struct {
		name    string
		modules []fx.Option
		root    string // the failure's start, after "eventfxtest: New: "
	}{
		{"duplicate handler name", []fx.Option{
			handlers.Register(handlers.New("billing", "orders", noop)),
			handlers.Register(handlers.New("billing", "refunds", noop)),
		}, `handler name "billing" is used twice: on topic "`}, // the topics in fx's value-group order
		{"missing dependency", []fx.Option{fx.Invoke(func(*Ledger) {})},
			"missing type: *eventfxtest_test.Ledger\n\tin fx: missing dependencies for function"},
		{"start error", []fx.Option{fx.Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.StartHook(func() error { return errors.New("ledger unreachable") }))
		})}, "start: ledger unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTB(t)
			failures := f.do(func() { eventfxtest.New(f, eventfxtest.InMemory(), eventfxtest.Modules(tt.modules...)) })
			require.Len(t, failures, 1)
			assert.True(t, strings.HasPrefix(failures[0], "eventfxtest: New: "+tt.root), failures[0])
		})
	}
}

// TestNewFailsAtTheCallLine runs itself in a test binary of its own, where
// New fails, and checks that testing reports the failure at the test's call
// of New rather than somewhere inside eventfxtest or fx.
func TestNewFailsAtTheCallLine(t *testing.T) {
	if os.Getenv("EVENTFXTEST_CHILD") == "1" {
		_, _, line, _ := runtime.Caller(0)
		t.Logf("New is called at line %d", line+2)
		eventfxtest.New(t, eventfxtest.InMemory(), eventfxtest.Modules(fx.Invoke(func(*Ledger) {})))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNewFailsAtTheCallLine$", "-test.v")
	cmd.Env = append(os.Environ(), "EVENTFXTEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	m := regexp.MustCompile(`New is called at line (\d+)`).FindSubmatch(out)
	require.NotNil(t, m, "%s", out)
	assert.Contains(t, string(out), fmt.Sprintf("diagnostics_test.go:%s: eventfxtest: New: missing type: *eventfxtest_test.Ledger", m[1]))
}
