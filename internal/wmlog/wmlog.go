// Package wmlog adapts the service's *slog.Logger for Watermill and its
// Kafka adapter.
package wmlog

import (
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// New returns Watermill's logger over l. Watermill's info messages (router
// and consumer life-cycle chatter, one per subscription) are logged at debug
// level; its warnings and errors keep theirs.
func New(l *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}
