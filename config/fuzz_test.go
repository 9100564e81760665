package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

// FuzzLoadYAML checks that any input loads without panicking, and that
// LoadYAML returns either a valid config or a zero one with an error.
func FuzzLoadYAML(f *testing.F) {
	for _, seed := range []string{
		"",
		fileYAML,
		"kafka: {brokers: [a:1, b:2], sasl: {mechanism: PLAIN, username: u, password: p}}",
		"retry: {max_retries: lots, jitter: 2, initial_interval: 30}\nshutdown_timeout: soon",
		"subscriber:\n  routes:\n    - {name: a, topic: t, webhook: {url: 'http://h/x', timeout: 1s}, retry: {max_retries: -1}}\n    - [1, 2]",
		"kafka: [x]\nhttp: ~\npublisher: {allowed_topics: 'a,b', max_body_bytes: 1e30}",
		"a: &x {b: *x}",
		"? [1]\n: 2",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.LoadYAML(data, []string{"EVENTFX_RETRY_MAX_RETRIES=2"})
		if err != nil {
			assert.Zero(t, c)
			return
		}
		require.NoError(t, c.Validate())
	})
}
