package wmlog_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"

	"github.com/eventfx/eventfx/internal/wmlog"
)

func TestTraceLinesOnlyAtTraceLevelWithEventfxFieldNames(t *testing.T) {
	for _, tt := range []struct {
		level slog.Level
		want  bool
	}{{watermill.LevelTrace, true}, {slog.LevelDebug, false}, {slog.LevelInfo, false}} {
		var buf bytes.Buffer
		l := wmlog.New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level})))
		l.With(watermill.LogFields{"handler_name": "h"}).Trace("Received message", watermill.LogFields{"message_uuid": "m1"})
		if !tt.want {
			assert.Empty(t, buf.String(), "level %s", tt.level)
			continue
		}
		assert.Contains(t, buf.String(), "message_id=m1")
		assert.Contains(t, buf.String(), "handler=h")
		assert.NotContains(t, buf.String(), "message_uuid")
	}
}

func TestInfoIsLoggedAtDebug(t *testing.T) {
	var buf bytes.Buffer
	l := wmlog.New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Info("Starting handler", nil)
	assert.Empty(t, buf.String())
	l.Error("failed", assert.AnError, watermill.LogFields{"kafka_partition": 3})
	assert.Contains(t, buf.String(), "partition=3")
}
