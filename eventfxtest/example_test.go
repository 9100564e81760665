package eventfxtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventfx/eventfx/eventfxtest"
	"github.com/eventfx/eventfx/handlers"
)

type Order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

type Payment struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

// capture is the billing service's handler under test.
func capture(_ context.Context, o Order) ([]Payment, error) {
	return []Payment{{OrderID: o.ID, Amount: o.Amount}}, nil
}

// testBilling is a test as it is written in a _test.go file:
// func TestBilling(t *testing.T). It runs the handler on a fresh embedded
// broker, publishes an order, waits for the payment it emits and checks
// that nothing was poisoned.
func testBilling(t *testing.T) {
	env := eventfxtest.New(t, eventfxtest.Modules(
		handlers.Register(handlers.NewEmitting("billing", "orders", "payments", capture)),
	))
	env.Publish("orders", Order{ID: "o-1", Amount: 4200})

	paid := eventfxtest.Decode[Payment](t, env.Messages("payments", 1)[0])
	if paid.OrderID != "o-1" || paid.Amount != 4200 {
		t.Errorf("captured %+v, want o-1 for 4200", paid)
	}
	env.Stop() // what was in flight is handled
	env.NoPoison()
	fmt.Printf("captured %s: %d\n", paid.OrderID, paid.Amount)
}

func ExampleNew() {
	// go test runs a TestBilling; here runTest does.
	fmt.Println("passed:", runTest(testBilling))
	// Output:
	// captured o-1: 4200
	// passed: true
}
