package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/schema"
)

// A registry that does not answer is asked once, not once per message.
func TestConsoleDecoderLeavesARegistryThatDoesNotAnswerAlone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	cfg := config.Config{Kafka: config.Kafka{Brokers: []string{"127.0.0.1:9"}}}
	cfg.SchemaRegistry.URL = "http://" + addr
	reg, err := schema.New(cfg)
	require.NoError(t, err)
	defer reg.Close()
	d := &consoleDecoder{reg: reg}
	framed := []byte{0, 0, 0, 0, 7, 2, 'x'}

	_, _, first := d.decode(framed)
	require.ErrorIs(t, first, handlers.ErrCodecUnavailable)
	assert.NotContains(t, first.Error(), "not asked again")
	_, _, second := d.decode(framed)
	require.ErrorIs(t, second, handlers.ErrCodecUnavailable)
	assert.Contains(t, second.Error(), "not asked again", "the second payload must not wait for the registry")
}
