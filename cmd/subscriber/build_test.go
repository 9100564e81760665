package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
)

func testConfig(routes ...config.Route) config.Config {
	return config.Config{
		Kafka:      config.Kafka{Brokers: []string{"127.0.0.1:9092"}},
		Subscriber: config.Subscriber{Routes: routes},
	}.WithDefaults()
}

func TestBuildWiresOneHandlerPerRoute(t *testing.T) {
	cfg := testConfig(
		config.Route{Name: "a", Topic: "orders", Webhook: config.Webhook{URL: "http://127.0.0.1:9000/a"}},
		config.Route{Name: "b", Topic: "orders", Webhook: config.Webhook{URL: "https://example.com/b", Secret: "whsec_c2VjcmV0", Timeout: time.Second}},
	)
	require.NoError(t, cfg.Validate())
	assert.NoError(t, fx.ValidateApp(app.Core(cfg), build(cfg)))
}

func TestBuildReportsEveryBadRoute(t *testing.T) {
	cfg := testConfig(
		config.Route{Name: "a", Topic: "orders", Webhook: config.Webhook{URL: "http://127.0.0.1:9000/a", Secret: "whsec_%%%"}},
		config.Route{Name: "b", Topic: "orders", Webhook: config.Webhook{URL: "http://127.0.0.1:9000/b"}},
		config.Route{Name: "c", Topic: "orders", Webhook: config.Webhook{URL: "http://127.0.0.1:9000/c", Secret: "whsec_"}},
	)
	err := fx.New(fx.NopLogger, build(cfg)).Err()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `subscriber.routes[0]: route "a": webhook secret: text after "whsec_" must be base64`)
	assert.Contains(t, err.Error(), `subscriber.routes[2]: route "c": webhook secret: text after "whsec_" must not be empty`)
	assert.NotContains(t, err.Error(), "%%%")
}
