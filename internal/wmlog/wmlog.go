// Package wmlog adapts the service's *slog.Logger for Watermill and its
// Kafka adapter.
package wmlog

import (
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// New returns Watermill's logger over l. Watermill's info messages (router
// and consumer life-cycle chatter, one per subscription) are logged at debug
// level; its warnings and errors keep theirs. Watermill's field names for a
// message are renamed to eventfx's (message_uuid → message_id,
// handler_name → handler, kafka_partition → partition,
// kafka_partition_offset → offset), so one query finds a message's lines.
func New(l *slog.Logger) watermill.LoggerAdapter {
	return renamer{watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})}
}

var names = map[string]string{
	"message_uuid":           "message_id",
	"handler_name":           "handler",
	"subscriber_name":        "handler",
	"kafka_partition":        "partition",
	"kafka_partition_offset": "offset",
}

type renamer struct{ next watermill.LoggerAdapter }

func rename(f watermill.LogFields) watermill.LogFields {
	var out watermill.LogFields
	for k, v := range f {
		if n, ok := names[k]; ok {
			if out == nil {
				out = make(watermill.LogFields, len(f))
				for k2, v2 := range f {
					out[k2] = v2
				}
			}
			delete(out, k)
			out[n] = v
		}
	}
	if out == nil {
		return f
	}
	return out
}

func (r renamer) Error(msg string, err error, f watermill.LogFields) {
	r.next.Error(msg, err, rename(f))
}
func (r renamer) Info(msg string, f watermill.LogFields)  { r.next.Info(msg, rename(f)) }
func (r renamer) Debug(msg string, f watermill.LogFields) { r.next.Debug(msg, rename(f)) }
func (r renamer) Trace(msg string, f watermill.LogFields) { r.next.Trace(msg, rename(f)) }
func (r renamer) With(f watermill.LogFields) watermill.LoggerAdapter {
	return renamer{r.next.With(rename(f))}
}
