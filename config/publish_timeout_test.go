package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

func TestPublisherPublishTimeout(t *testing.T) {
	t.Parallel()
	c, err := config.LoadFrom("", nil)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, c.Publisher.PublishTimeout, "default")

	c, err = config.LoadFrom("", []string{"EVENTFX_PUBLISHER_PUBLISH_TIMEOUT=750ms"})
	require.NoError(t, err)
	assert.Equal(t, 750*time.Millisecond, c.Publisher.PublishTimeout)

	_, err = config.LoadYAML([]byte("publisher: {publish_timeout: -1s}"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "publisher.publish_timeout")
}
