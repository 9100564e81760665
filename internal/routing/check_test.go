package routing

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/handlers"
)

type shipment struct{}

func TestCheckReportsEveryWiringMistake(t *testing.T) {
	noop := func(context.Context, shipment) error { return nil }
	err := checkHandlers([]handlers.Handler{
		handlers.New("a", "orders", noop),
		handlers.New("a", "refunds", noop),
		handlers.New("", "orders", noop),
		handlers.New("bill ing", "orders", noop),
		handlers.New("b", "bad topic", noop),
		{Name: "c", Topic: "orders"},
	})
	require.Error(t, err)
	for _, want := range []string{`handler name "a" is used twice: on topic "orders" and on topic "refunds"`, `handler "bill ing": name may hold only letters, digits, '.', '_' and '-', got ' '`, "name is required", `handler "b": topic`, `handler "c": Func is nil`} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"billing", "billing-v2", "orders.shipping_1", strings.Repeat("a", 200)} {
		assert.NoError(t, validName(ok), ok)
	}
	for _, bad := range []string{"", "bill ing", "billing/eu", "rêve", strings.Repeat("a", 201), "a\tb"} {
		assert.Error(t, validName(bad), bad)
	}
}
