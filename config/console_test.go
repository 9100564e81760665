package config_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

func TestConsoleKeys(t *testing.T) {
	t.Setenv("EVENTFX_CONSOLE_TOKEN", "hunter2")
	t.Setenv("EVENTFX_CONSOLE_READ_ONLY", "true")
	cfg, err := config.Load("")
	require.NoError(t, err)
	cfg = cfg.WithDefaults()
	assert.Equal(t, config.Console{Token: "hunter2", ReadOnly: true}, cfg.Console)
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%#v", cfg), cfg.Console.String()} {
		assert.NotContains(t, s, "hunter2")
		assert.Contains(t, s, "[redacted]")
	}
}

func TestConsoleAddrIsValidated(t *testing.T) {
	cfg := config.Config{Console: config.Console{Addr: "nowhere"}}.WithDefaults()
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "console.addr")
}
