package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/handlers"
)

// fuzzOrder has every kind of field a team's event has: strings, numbers,
// a nested struct and slices.
type fuzzOrder struct {
	ID       string         `json:"id"`
	Total    int            `json:"total"`
	Customer fuzzCustomer   `json:"customer"`
	Lines    []fuzzLine     `json:"lines"`
	Tags     []string       `json:"tags"`
	Extra    map[string]int `json:"extra"`
}

type fuzzCustomer struct {
	Name string `json:"name"`
	Age  int8   `json:"age"`
}

type fuzzLine struct {
	SKU string `json:"sku"`
	Qty uint16 `json:"qty"`
}

// Validate rejects orders without an ID or with a negative total.
func (o fuzzOrder) Validate() error {
	if o.ID == "" {
		return errors.New("id is required")
	}
	if o.Total < 0 {
		return errors.New("total must not be negative")
	}
	return nil
}

// FuzzTypedDecode feeds arbitrary payloads to a typed handler: it never
// panics, a payload that does not decode or validate is a permanent error
// (poisoned at once, not retried), and the team's function is called exactly
// when the payload decoded into a valid event.
func FuzzTypedDecode(f *testing.F) {
	seeds := []string{
		`{"id":"o1","total":42,"customer":{"name":"Ada","age":36},"lines":[{"sku":"A","qty":2}],"tags":["x"],"extra":{"a":1}}`,
		`{"id":"o1"}`,
		`{"id":"o1","unknown":true}`,
		`{"id":"o1","total":`,
		`{"id":"o1",}`,
		`not json`,
		`{"id":1}`,
		`{"id":"o1","total":"42"}`,
		`{"id":"o1","customer":[]}`,
		`{"id":"o1","lines":{"sku":"A"}}`,
		`{"id":"o1","lines":[{"qty":-1}]}`,
		`{"id":"o1","customer":{"age":300}}`,
		`{"id":"o1","extra":{"a":"b"}}`,
		`{"total":1}`,
		`{"id":"o1","total":-1}`,
		``,
		`   `,
		`null`,
		`[]`,
		`"o1"`,
		`{"id":"o1","total":99999999999999999999999999999999}`,
		`{"id":"o1","total":1e400}`,
		`{"id":"o1","total":1.5}`,
		`{"id":"o1","tags":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
		strings.Repeat("[", 100000),
		"{\"id\":\"o\xff\xfe1\"}",
		"\xff\xfe\xfd",
		"{\"id\":\"o1\"}\x00",
		`{"id":"o1"} {"id":"o2"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		called := false
		h := handlers.New("fuzz", "orders", func(ctx context.Context, o fuzzOrder) error {
			called = true
			return nil
		})

		var out []*message.Message
		var err error
		require.NotPanics(t, func() { out, err = h.Func(message.NewMessage("m", payload)) }, "payload %q", payload)

		var want fuzzOrder
		decodes := json.Unmarshal(payload, &want) == nil && want.Validate() == nil
		assert.Empty(t, out, "a typed handler emits nothing")
		assert.Equal(t, decodes, called, "payload %q: the function must be called exactly when the payload decodes into a valid event", payload)
		assert.Equal(t, decodes, err == nil, "payload %q: error %v", payload, err)
		assert.True(t, err == nil || handlers.IsPermanent(err), "payload %q: a decode or validation error must be permanent, got %v", payload, err)
	})
}
