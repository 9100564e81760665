package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/console"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/webhook"
)

// waitFor bounds every wait of these tests.
const waitFor = 20 * time.Second

type order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

type payment struct {
	OrderID string `json:"order_id"`
}

// receiver is a webhook target that refuses deliveries (422, a permanent
// failure: the relay poisons them) until it is fixed.
type receiver struct {
	srv       *httptest.Server
	fixed     atomic.Bool
	mu        sync.Mutex
	delivered []string // X-Event-ID of each accepted delivery
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		if !r.fixed.Load() {
			http.Error(w, "customer record missing", http.StatusUnprocessableEntity)
			return
		}
		r.mu.Lock()
		r.delivered = append(r.delivered, req.Header.Get("X-Event-ID"))
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.delivered...)
}

// system is a running eventfx service on an embedded broker, with a
// console over it:
//
//   - handler "notify", a webhook relay route on orders, whose receiver
//     refuses everything: every order is poisoned;
//   - handler "bill" on orders, emitting a payment per order to payments;
//   - handler "audit" on payments, stuck on its first message until the
//     test ends: it lags, with no commit progress.
type system struct {
	addr, service, orders, payments, poisonTopic string
	receiver                                     *receiver
	console                                      *console.Console
	base                                         string // the console's URL
	token                                        string
}

func startSystem(t *testing.T, token string) *system {
	t.Helper()
	// A broker of its own: the names can be those a reader expects (they
	// are on the screenshots).
	s := &system{
		addr:        kafkatest.Broker(t),
		service:     "shop",
		orders:      "orders",
		payments:    "payments",
		poisonTopic: config.DefaultPoisonTopic,
		receiver:    newReceiver(t),
		token:       token,
	}
	cfg := kafkatest.Config(s.addr)
	cfg.Service, cfg.Poison.Topic = s.service, s.poisonTopic

	notify, err := webhook.New(config.Route{Name: "notify", Topic: s.orders, Webhook: config.Webhook{URL: s.receiver.srv.URL + "/hook"}}, nil)
	require.NoError(t, err)
	bill := handlers.NewEmitting("bill", s.orders, s.payments, func(_ context.Context, o order) ([]payment, error) {
		return []payment{{OrderID: o.ID}}, nil
	})
	release := make(chan struct{})
	audit := handlers.New("audit", s.payments, func(ctx context.Context, _ payment) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, handlers.WithRetry(config.Retry{MaxRetries: 1}))
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, handlers.Register(notify, bill, audit), fx.NopLogger)
	a.RequireStart()
	t.Cleanup(a.RequireStop)
	t.Cleanup(func() { close(release) }) // before the stop: cleanups run last first

	client, err := poison.Dial(context.Background(), []string{s.addr}, cfg.Kafka)
	require.NoError(t, err)
	t.Cleanup(client.Close)
	s.console, err = console.New(console.Options{
		Client:      client,
		PoisonTopic: s.poisonTopic,
		Token:       token,
		SampleEvery: 200 * time.Millisecond,
		StallAfter:  time.Second,
		FailWindow:  time.Hour,
	})
	require.NoError(t, err)
	t.Cleanup(s.console.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.console.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	s.base = serve(t, s.console)
	return s
}

// serve serves c on a loopback port until the test ends and returns its
// URL.
func serve(t *testing.T, c *console.Console) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: c.Handler(l.Addr().String())}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// publishOrders writes n orders, order-<i> with correlation ID
// conv-<i>, keyed by customer.
func (s *system) publishOrders(t *testing.T, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range n {
		v, _ := json.Marshal(order{ID: fmt.Sprintf("order-%d", i), Amount: 10 + i})
		recs[i] = &kgo.Record{
			Topic: s.orders, Key: fmt.Appendf(nil, "customer-%d", i%3), Value: v,
			Headers: []kgo.RecordHeader{
				{Key: poison.IDHeader, Value: fmt.Appendf(nil, "order-%d", i)},
				{Key: meta.CorrelationID, Value: fmt.Appendf(nil, "conv-%d", i)},
				{Key: meta.ContentType, Value: []byte("application/json")},
			},
		}
	}
	kafkatest.Produce(t, s.addr, recs...)
}

// get GETs path of the console and decodes the JSON answer into v; it
// returns the status.
func (s *system) get(t *testing.T, path string, v any) int {
	t.Helper()
	res, err := http.Get(s.base + path)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if v != nil {
		require.NoError(t, json.Unmarshal(body, v), "GET %s answered %d %s", path, res.StatusCode, body)
	}
	return res.StatusCode
}

// post POSTs body to path with headers (name, value pairs), and returns
// the status and the answer.
func (s *system) post(t *testing.T, path, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// eventually waits until cond holds, then fails saying what it saw.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	last := ""
	for time.Now().Before(deadline) {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waited %s for %s; last seen: %s", waitFor, what, last)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
