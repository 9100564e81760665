package config_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

// withArgs runs Load with os.Args set to the program name and args; the
// tests that use it are not parallel, as os.Args is the process's.
func withArgs(t *testing.T, args ...string) (config.Config, error) {
	t.Helper()
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = append([]string{"service"}, args...)
	return config.Load("")
}

func TestLoadReadsTheConfigFlag(t *testing.T) {
	t.Setenv(config.EnvConfig, "")
	file := writeFile(t, "service: from-flag")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--config FILE", []string{"--config", file}, "from-flag"},
		{"--config=FILE", []string{"--config=" + file}, "from-flag"},
		{"-config FILE", []string{"-config", file}, "from-flag"},
		{"among the program's own arguments", []string{"-v", "--port", "9", "--config", file, "x"}, "from-flag"},
		{"no flag", []string{"-v"}, "eventfx"},
		{"after --", []string{"--", "--config", file}, "eventfx"},
		{"a flag that only starts with config", []string{"--configuration", file}, "eventfx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := withArgs(t, tt.args...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Service)
		})
	}
}

func TestLoadConfigFlagWinsOverEnvironment(t *testing.T) {
	t.Setenv(config.EnvConfig, writeFile(t, "service: from-env"))
	c, err := withArgs(t, "--config", writeFile(t, "service: from-flag"))
	require.NoError(t, err)
	assert.Equal(t, "from-flag", c.Service)
}

func TestLoadConfigFlagErrors(t *testing.T) {
	t.Setenv(config.EnvConfig, "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"--config"}, "--config needs a file"},
		{"empty file", []string{"--config="}, "--config needs a file"},
		{"missing file", []string{"--config", "/nonexistent/eventfx.yaml"}, "/nonexistent/eventfx.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := withArgs(t, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
