package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/gateway"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/transport"
)

// TestModuleStartsServesAndStops runs the gateway in an fx app over the
// in-memory transport and publishes through its HTTP server.
func TestModuleStartsServesAndStops(t *testing.T) {
	cfg := config.Config{HTTP: config.HTTP{Addr: "127.0.0.1:0"}}
	var (
		ops *app.HTTPServer
		tr  transport.Transport
	)
	a := fxtest.New(t,
		app.Core(cfg),
		app.MemoryModule,
		app.PublisherModule,
		app.HTTPModule,
		gateway.Module,
		fx.Populate(&ops, &tr),
	)
	a.RequireStart()
	defer a.RequireStop()

	sub, err := tr.Subscriber(transport.Spec{ConsumerGroup: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, "orders")
	require.NoError(t, err)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ops.Addr()+"/v1/events/orders", strings.NewReader("hello"))
	require.NoError(t, err)
	req.Header.Set("X-Correlation-ID", "corr-1")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	var got gateway.Accepted
	require.NoError(t, json.NewDecoder(res.Body).Decode(&got))

	select {
	case m := <-msgs:
		m.Ack()
		assert.Equal(t, got.ID, m.UUID)
		assert.Equal(t, "hello", string(m.Payload))
		assert.Equal(t, "corr-1", m.Metadata.Get(meta.CorrelationID))
	case <-ctx.Done():
		t.Fatal("the published event did not arrive")
	}
}
