package handlers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/eventfxtest"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

func TestLoggerIsTheServicesWithTheMessagesFields(t *testing.T) {
	var out kafkatest.Buffer
	service := slog.New(slog.NewJSONHandler(&out, nil)).With("service", "billing")
	logged := make(chan struct{}, 1)
	h := handlers.New("bill", "orders", func(ctx context.Context, o Shipment) error {
		handlers.Logger(ctx).Info("billing", "order", o.OrderID)
		logged <- struct{}{}
		return nil
	})
	env := eventfxtest.New(t, eventfxtest.Logger(service), eventfxtest.Modules(handlers.Register(h)))
	sent := env.Publish("orders", Shipment{OrderID: "o-1", Items: 1}, app.WithCorrelationID("conv-1"))
	env.Eventually(func() bool { return len(logged) == 1 }, "the handler logged")

	var line map[string]any
	for l := range strings.SplitSeq(out.String(), "\n") {
		if strings.Contains(l, `"msg":"billing"`) {
			require.NoError(t, json.Unmarshal([]byte(l), &line))
		}
	}
	require.NotNil(t, line, "no line of the handler's in the service's log:\n%s", out.String())
	assert.Equal(t, "INFO", line["level"])
	assert.Equal(t, "billing", line["service"])
	assert.Equal(t, "bill", line["handler"])
	assert.Equal(t, "orders", line["topic"])
	assert.Equal(t, sent.UUID, line["message_id"])
	assert.Equal(t, "conv-1", line["correlation_id"])
	assert.EqualValues(t, 1, line["attempt"])
	assert.Equal(t, "o-1", line["order"])
}

func TestLoggerOutsideAHandlerIsTheDefault(t *testing.T) {
	assert.Same(t, slog.Default(), handlers.Logger(context.Background()))
}
