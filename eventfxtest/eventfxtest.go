// Package eventfxtest runs eventfx apps inside tests: on a fresh embedded
// Kafka broker (the default) or in memory, with helpers to publish events,
// wait for a handler's effect or for messages on a topic, and assert what
// was poisoned. Every wait has a deadline and fails the test with what was
// expected, what arrived and what was poisoned meanwhile; every failure
// names the method that failed and is reported at the test's line.
//
//	func TestBilling(t *testing.T) {
//		env := eventfxtest.New(t, eventfxtest.Modules(billing.Module))
//		env.Publish("orders", OrderPlaced{ID: "o1", Amount: 5})
//		paid := env.Messages("payments", 1)
//		...
//		env.NoPoison()
//	}
package eventfxtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/transport"
)

// DefaultTimeout bounds every wait unless Timeout says otherwise.
const DefaultTimeout = 20 * time.Second

// Env is one running app under test.
type Env struct {
	t       testing.TB
	cfg     config.Config
	app     *fx.App
	tr      transport.Transport
	pub     *app.Publisher
	broker  string
	timeout time.Duration
	stopped atomic.Bool
	// poison records the in-memory poison topic; nil on the broker.
	poison *poisonLog
}

// Option configures New.
type Option func(*options)

type options struct {
	memory  bool
	modules []fx.Option
	config  func(*config.Config)
	timeout time.Duration
	logger  *slog.Logger
}

// Modules adds fx options: handlers.Register(...), your own modules.
func Modules(opts ...fx.Option) Option {
	return func(o *options) { o.modules = append(o.modules, opts...) }
}

// Config edits the test config (a fresh service name and poison topic,
// short retry delays and group timings) before the app starts.
func Config(edit func(*config.Config)) Option { return func(o *options) { o.config = edit } }

// InMemory runs on the in-memory transport instead of the embedded broker:
// faster, but no consumer groups, partitions or offsets. Poisoned and
// NoPoison work there too; Count needs the embedded broker.
func InMemory() Option { return func(o *options) { o.memory = true } }

// Timeout replaces DefaultTimeout for the waits of this Env.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Logger replaces the default logger (which writes nothing; pass one to see
// the app's logs).
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New starts an app with the subscriber and publisher modules and the given
// options, and stops it at the end of the test. If the app cannot be built
// or started (a duplicate handler name, a missing dependency, an OnStart
// error), it fails the test at the caller's line, with the root cause
// first and fx's account of what it was building after it.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := options{timeout: DefaultTimeout, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := kafkatest.Tune(config.Config{
		Service: kafkatest.Unique("test"),
		Retry:   config.Retry{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond},
	})
	e := &Env{t: t, timeout: o.timeout}
	module := app.KafkaModule
	if o.memory {
		e.poison = &poisonLog{}
		module = fx.Provide(func(lc fx.Lifecycle, l *slog.Logger) transport.Transport { return newMemoryTransport(lc, l, e.poison) })
	} else {
		e.broker = kafkatest.Broker(t)
		cfg.Kafka.Brokers = []string{e.broker}
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.cfg = cfg.WithDefaults()
	if e.poison != nil {
		e.poison.topic = e.cfg.Poison.Topic
	}
	e.app = fx.New(
		app.Core(e.cfg),
		fx.Decorate(func() *slog.Logger { return o.logger }),
		module, app.PublisherModule, app.SubscriberModule,
		fx.Populate(&e.tr, &e.pub),
		fx.Options(o.modules...),
	)
	if err := e.app.Err(); err != nil {
		t.Fatalf("eventfxtest: New: %s", fxError(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.app.StartTimeout())
	defer cancel()
	if err := e.app.Start(ctx); err != nil {
		t.Fatalf("eventfxtest: New: start: %s", fxError(err))
	}
	t.Cleanup(func() {
		t.Helper()
		e.stop("New: stop at cleanup")
	})
	return e
}

// fxError puts the root cause of an fx error first (what the user must
// fix: a constructor's error, a missing type) and fx's chain of what was
// being built after it.
func fxError(err error) string {
	root := dig.RootCause(err)
	if root == err || root.Error() == err.Error() {
		return err.Error()
	}
	return fmt.Sprintf("%v\n\tin fx: %v", root, err)
}

// Config is the app's config (defaults applied).
func (e *Env) Config() config.Config { return e.cfg }

// Broker is the embedded broker's address ("" in memory).
func (e *Env) Broker() string { return e.broker }

// Publisher is the app's publisher.
func (e *Env) Publisher() *app.Publisher { return e.pub }

// Stop stops the app gracefully (it also happens at cleanup) and fails the
// test if it does not stop cleanly.
func (e *Env) Stop() {
	e.t.Helper()
	e.stop("Stop")
}

func (e *Env) stop(method string) {
	e.t.Helper()
	if !e.stopped.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.app.StopTimeout())
	defer cancel()
	if err := e.app.Stop(ctx); err != nil {
		e.t.Fatalf("eventfxtest: %s: %s", method, fxError(err))
	}
}
