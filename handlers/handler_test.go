package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/meta"
)

type Shipment struct {
	OrderID string `json:"order_id"`
	Items   int    `json:"items"`
}

func (s Shipment) Validate() error {
	if s.Items <= 0 {
		return errors.New("no items")
	}
	return nil
}

func (s Shipment) EventKey() string { return s.OrderID }

func TestTypedHandlerDecodesAndClassifiesErrors(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		permanent bool
		wantErr   string
	}{
		{"valid", `{"order_id":"o1","items":2}`, false, ""},
		{"malformed JSON", `{"order_id":`, true, "decode handlers_test.Shipment: unexpected end of JSON input"},
		{"wrong field type", `{"order_id":"o1","items":"two"}`, true, "decode handlers_test.Shipment: json: cannot unmarshal string into Go struct field Shipment.items of type int"},
		{"invalid event", `{"order_id":"o1","items":0}`, true, "invalid handlers_test.Shipment: no items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := handlers.New("ship", "orders", func(ctx context.Context, s Shipment) error { return nil })
			_, err := h.Func(message.NewMessage("m", []byte(tt.payload)))
			assert.Equal(t, tt.permanent, handlers.IsPermanent(err))
			assert.Equal(t, tt.wantErr, fmt.Sprint(errOrEmpty(err)))
		})
	}
}

// TestTypedHandlerValidatesEventsOfEveryKind: Validate runs whether the
// event is a value with a value or pointer method, or a pointer.
func TestTypedHandlerValidatesEventsOfEveryKind(t *testing.T) {
	invalid := []byte(`{"order_id":"o1","items":0}`)
	tests := []struct {
		name string
		h    handlers.Handler
	}{
		{"value", handlers.New("ship", "orders", func(context.Context, Shipment) error { return nil })},
		{"pointer method", handlers.New("ship", "orders", func(context.Context, checked) error { return nil })},
		{"pointer", handlers.New("ship", "orders", func(context.Context, *Shipment) error { return nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.h.Func(message.NewMessage("m", invalid))
			assert.True(t, handlers.IsPermanent(err), "permanent: %v", err)
			assert.ErrorContains(t, err, "invalid ")
		})
	}
}

// checked validates itself through a pointer method.
type checked struct {
	Items int `json:"items"`
}

func (c *checked) Validate() error {
	if c.Items <= 0 {
		return errors.New("no items")
	}
	return nil
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestContextAccessors(t *testing.T) {
	msg := message.NewMessage("m1", []byte(`{"order_id":"o1","items":1}`))
	msg.Metadata.Set("correlation_id", "c1")
	msg.Metadata.Set("_eventfx_key", "k1")
	var id, cid, key string
	h := handlers.New("ship", "orders", func(ctx context.Context, s Shipment) error {
		id, cid, key = handlers.MessageID(ctx), handlers.CorrelationID(ctx), handlers.Key(ctx)
		return nil
	})
	_, err := h.Func(msg)
	require.NoError(t, err)
	assert.Equal(t, []string{"m1", "c1", "k1"}, []string{id, cid, key})

	ctx := handlers.ContextWithCorrelationID(context.Background(), "outside")
	assert.Equal(t, "outside", handlers.CorrelationID(ctx))
	assert.Zero(t, handlers.Attempt(ctx))
}

func TestEmittingHandlerEncodesEventsWithKeyAndCorrelation(t *testing.T) {
	msg := message.NewMessage("m1", []byte(`{"order_id":"o1","items":1}`))
	msg.Metadata.Set("correlation_id", "c1")
	h := handlers.NewEmitting("ship", "orders", "shipments", func(ctx context.Context, s Shipment) ([]Shipment, error) {
		return []Shipment{s, {OrderID: "o2", Items: 3}}, nil
	})
	out, err := h.Func(msg)
	require.NoError(t, err)
	require.Len(t, out, 2)
	assert.Equal(t, "o2", out[1].Metadata.Get("_eventfx_key"))
	assert.Equal(t, "c1", out[1].Metadata.Get("correlation_id"))
	assert.Equal(t, "application/json", out[1].Metadata.Get("content_type"))
	assert.JSONEq(t, `{"order_id":"o2","items":3}`, string(out[1].Payload))
	assert.NotEqual(t, out[0].UUID, out[1].UUID)
}

func TestErrorMarkers(t *testing.T) {
	base := errors.New("x")
	assert.Nil(t, handlers.Permanent(nil))
	assert.True(t, handlers.IsPermanent(fmt.Errorf("wrapped: %w", handlers.Permanent(base))))
	assert.ErrorIs(t, handlers.Permanent(base), base)
	d, ok := meta.RetryAfterOf(fmt.Errorf("w: %w", handlers.RetryAfter(base, time.Second)))
	assert.True(t, ok)
	assert.Equal(t, time.Second, d)
}

// panicking is a codec whose Unmarshal panics.
type panicking struct{ handlers.JSON }

func (panicking) Unmarshal([]byte, any) error { panic("codec bug") }

func TestTypedHandlerCodecPanicReachesTheCaller(t *testing.T) {
	h := handlers.New("panics", "orders", func(context.Context, Shipment) error { return nil }, handlers.WithCodec(panicking{}))
	assert.PanicsWithValue(t, "codec bug", func() { _, _ = h.Func(message.NewMessage("m", []byte(`{}`))) })
}
