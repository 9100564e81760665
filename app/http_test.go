package app_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOpsEndpoints(t *testing.T) {
	b, err := broker.Start(broker.Config{})
	require.NoError(t, err)
	defer b.Close()
	cfg := kafkatest.Config(b.Addr())
	cfg.HTTP.Addr = "127.0.0.1:0"
	var ops *app.HTTPServer
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, app.HTTPModule, fx.Populate(&ops),
		handlers.Register(handlers.New("noop", kafkatest.Unique("events"), func(context.Context, Order) error { return nil })))
	a.RequireStart()
	defer a.RequireStop()
	base := "http://" + ops.Addr()

	code, _ := get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	// Ready once the handler's consumer group is joined.
	kafkatest.Eventually(t, 15*time.Second, func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusOK
	}, func() string { _, body := get(t, base+"/readyz"); return "readyz: " + body })
	code, body := get(t, base+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "go_goroutines")

	b.Close() // the broker goes away
	kafkatest.Eventually(t, 15*time.Second, func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable
	}, func() string { _, body := get(t, base+"/readyz"); return "readyz still " + body })
	code, _ = get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code, "the process is still alive")

	b2, err := broker.Start(broker.Config{Addr: b.Addr()}) // and comes back
	require.NoError(t, err)
	defer b2.Close()
	kafkatest.Eventually(t, 15*time.Second, func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusOK
	}, func() string { _, body := get(t, base+"/readyz"); return "readyz still " + body })
}
