package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
)

func TestOutboxModuleRefusesAMissingOrUnreachableDatabase(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	tests := []struct {
		name   string
		outbox config.Outbox
		want   string
	}{
		{"no dsn", config.Outbox{}, "outbox.dsn: required"},
		{"not a dsn", config.Outbox{DSN: "postgres://a b"}, "outbox.dsn: "},
		{"nothing listens", config.Outbox{DSN: "postgres://app:s3cret@127.0.0.1:1/shop?connect_timeout=2"}, "outbox: connect to postgres://app:[redacted]@127.0.0.1:1/shop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafkatest.Config(addr)
			cfg.Outbox = tt.outbox
			a := fx.New(app.Core(cfg), app.KafkaModule, app.PublisherModule, app.OutboxModule, fx.NopLogger)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := a.Start(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestOutboxModuleWithSkipSchemaNeedsTheTables(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	cfg := outboxConfig(addr, dsn)
	cfg.Outbox.SkipSchema = true
	s := start(t, cfg)
	ctx := context.Background()
	_, err := outbox.ReadStatus(ctx, s.ob.Pool())
	require.Error(t, err, "no tables: the team's migrations did not run")
	assert.Contains(t, err.Error(), `relation "eventfx_outbox" does not exist`)
	// The shipped SQL creates them, and running it twice is harmless.
	for range 2 {
		_, err = s.ob.Pool().Exec(ctx, outbox.Schema)
		require.NoError(t, err)
	}
	_, err = outbox.ReadStatus(ctx, s.ob.Pool())
	require.NoError(t, err)
}
