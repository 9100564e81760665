package config_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

func TestOutboxDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	assert.Equal(t, config.Outbox{
		PollInterval: time.Second, BatchSize: 500, Workers: 4, MaxBackoff: 5 * time.Second, InboxRetention: 7 * 24 * time.Hour,
	}, config.Outbox{}.WithDefaults())
	require.NoError(t, config.Config{}.WithDefaults().Validate(), "a service without an outbox needs no outbox keys")

	cfg := config.Config{Outbox: config.Outbox{PollInterval: -time.Second, BatchSize: 20000, Workers: -1, MaxBackoff: -1, InboxRetention: -1}}.WithDefaults()
	err := cfg.Validate()
	var paths []string
	for _, fe := range config.FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{"outbox.poll_interval", "outbox.batch_size", "outbox.workers", "outbox.max_backoff", "outbox.inbox_retention"}, paths, "%v", err)
	assert.ErrorContains(t, err, "outbox.batch_size: must be between 1 and 10000, got 20000")

	assert.ErrorContains(t, config.Outbox{}.RequireDSN(), "outbox.dsn: required")
	assert.NoError(t, config.Outbox{DSN: "host=/tmp"}.RequireDSN())
}

func TestOutboxDSNIsPrintedRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct{ dsn, want string }{
		{"postgres://app:s3cret@db:5432/orders?sslmode=disable", "postgres://app:[redacted]@db:5432/orders?sslmode=disable"},
		{"postgres://db/orders?password=s3cret&user=app", "postgres://db/orders?password=[redacted]&user=app"},
		{"host=db user=app password=s3cret dbname=orders", "host=db user=app password=[redacted] dbname=orders"},
		{"host=db password='s3 cret' dbname=orders", "host=db password=[redacted] dbname=orders"},
		{"host=/tmp/pg dbname=orders", "host=/tmp/pg dbname=orders"},
		{"host=db sslpassword=s3cret dbname=orders", "host=db sslpassword=[redacted] dbname=orders"},
		{"postgres://app@db/orders?sslpassword=s3cret", "postgres://app@db/orders?sslpassword=[redacted]"},
		// Passwords url.Parse refuses.
		{"postgres://app:pa#s3cret@db/orders", "postgres://app:[redacted]@db/orders"},
		{"postgresql://app:pa/s3cret@db/orders", "postgresql://app:[redacted]@db/orders"},
		{"postgres://app:pa s3cret@db/orders?password=s3cret", "postgres://app:[redacted]@db/orders?password=[redacted]"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, config.Outbox{DSN: tt.dsn}.RedactedDSN(), tt.dsn)
		assert.NotContains(t, config.Outbox{DSN: tt.dsn}.RedactedDSN(), "s3cret")
	}
	cfg := config.Config{Outbox: config.Outbox{DSN: tests[0].dsn}}
	for _, printed := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(cfg.Outbox)} {
		assert.NotContains(t, printed, "s3cret")
		assert.Contains(t, printed, "postgres://app:[redacted]@db:5432/orders")
	}
}

func TestOutboxKeysLoadFromTheEnvironment(t *testing.T) {
	t.Setenv("EVENTFX_OUTBOX_DSN", "host=/tmp dbname=orders")
	t.Setenv("EVENTFX_OUTBOX_POLL_INTERVAL", "250ms")
	t.Setenv("EVENTFX_OUTBOX_NOTIFY", "true")
	cfg, err := config.Load("")
	require.NoError(t, err)
	assert.Equal(t, "host=/tmp dbname=orders", cfg.Outbox.DSN)
	assert.Equal(t, 250*time.Millisecond, cfg.Outbox.PollInterval)
	assert.True(t, cfg.Outbox.Notify)
}
