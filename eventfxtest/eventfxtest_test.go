package eventfxtest_test

import (
	"context"
	"errors"
	"flag"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/eventfxtest"
	"github.com/eventfx/eventfx/handlers"
)

type OrderPlaced struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

type PaymentCaptured struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

func (p PaymentCaptured) EventKey() string { return p.OrderID }

func bill(ctx context.Context, o OrderPlaced) ([]PaymentCaptured, error) {
	if o.Amount < 0 {
		return nil, handlers.Permanent(errors.New("negative amount"))
	}
	return []PaymentCaptured{{OrderID: o.ID, Amount: o.Amount}}, nil
}

func TestHarnessOnTheEmbeddedBroker(t *testing.T) {
	env := eventfxtest.New(t, eventfxtest.Modules(
		handlers.Register(handlers.NewEmitting("billing", "orders", "payments", bill)),
	))
	sent := env.Publish("orders", OrderPlaced{ID: "o1", Amount: 5})
	env.Publish("orders", OrderPlaced{ID: "o2", Amount: -1})

	paid := env.Messages("payments", 1)
	p := eventfxtest.Decode[PaymentCaptured](t, paid[0])
	assert.Equal(t, PaymentCaptured{OrderID: "o1", Amount: 5}, p)
	assert.Equal(t, "o1", eventfxtest.Key(paid[0]))
	assert.Equal(t, sent.Metadata.Get("correlation_id"), paid[0].Metadata.Get("correlation_id"))

	poisoned := env.Poisoned(1)
	assert.Equal(t, "negative amount", poisoned[0].Reason)
	assert.Equal(t, "billing", poisoned[0].Handler)
	assert.Equal(t, "orders", poisoned[0].Topic)
	assert.Equal(t, 1, poisoned[0].Attempts)
}

func TestHarnessInMemoryAndEventually(t *testing.T) {
	var handled atomic.Int32
	env := eventfxtest.New(t, eventfxtest.InMemory(), eventfxtest.Modules(
		handlers.Register(handlers.New("counter", "orders", func(context.Context, OrderPlaced) error {
			handled.Add(1)
			return nil
		})),
	))
	env.Publish("orders", OrderPlaced{ID: "o1", Amount: 1})
	env.Publish("orders", OrderPlaced{ID: "o2", Amount: 2})
	env.Eventually(func() bool { return handled.Load() == 2 }, "both orders handled")
	msgs := env.Messages("orders", 2)
	require.Len(t, msgs, 2)
}

func TestPoisonedAttemptsIsZeroWithoutAReadableHeader(t *testing.T) {
	env := eventfxtest.New(t)
	c, err := kgo.NewClient(kgo.SeedBrokers(env.Broker()), kgo.AllowAutoTopicCreation())
	require.NoError(t, err)
	defer c.Close()
	for _, headers := range [][]kgo.RecordHeader{
		nil,
		{{Key: "eventfx_attempts", Value: []byte("three")}},
	} {
		r := &kgo.Record{Topic: env.Config().Poison.Topic, Value: []byte("{}"), Headers: headers}
		require.NoError(t, c.ProduceSync(context.Background(), r).FirstErr())
	}
	poisoned := env.Poisoned(2)
	assert.Equal(t, 0, poisoned[0].Attempts)
	assert.Equal(t, 0, poisoned[1].Attempts)
}

// runTest runs test as go test runs a Test function, and reports whether
// it passed; for examples, whose output must not hold go test -v's lines.
func runTest(test func(*testing.T)) bool {
	if v := flag.Lookup("test.v"); v != nil {
		old := v.Value.String()
		_ = v.Value.Set("false")
		defer func() { _ = v.Value.Set(old) }()
	}
	return testing.RunTests(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "Test", F: test}})
}
