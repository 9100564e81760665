// Package wmlog adapts the service's *slog.Logger for Watermill and its
// Kafka adapter.
package wmlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/eventfx/eventfx/internal/meta"
)

// New returns Watermill's logger over l. Watermill's info messages (router
// and consumer life-cycle chatter, one per subscription) are logged at debug
// level; its warnings and errors keep theirs. Watermill's field names for a
// message are renamed to eventfx's (message_uuid → message_id,
// handler_name → handler, kafka_partition → partition,
// kafka_partition_offset → offset), so one query finds a message's lines.
//
// Whether Watermill's trace level is enabled is read once, here: its lines
// are per message (two for each, from the router and the Kafka
// subscriber), and asking the handler twice per message was a percent of
// the CPU of consuming. A logger whose level is later lowered to trace
// (slog.LevelVar) does not get them.
func New(l *slog.Logger) watermill.LoggerAdapter {
	return renamer{
		next:  watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
		l:     l,
		trace: l.Enabled(context.Background(), watermill.LevelTrace),
	}
}

var names = map[string]string{
	"message_uuid":           "message_id",
	"handler_name":           "handler",
	"subscriber_name":        "handler",
	"kafka_partition":        "partition",
	"kafka_partition_offset": "offset",
}

// renamer renames the fields and, before anything else, asks the logger
// whether the level is enabled: Watermill's router logs twice per message at
// trace level, and converting the fields of a line that is then dropped
// cost a quarter of the router's CPU.
type renamer struct {
	next  watermill.LoggerAdapter
	l     *slog.Logger
	trace bool // whether l logs watermill.LevelTrace, read once
}

func (r renamer) enabled(level slog.Level) bool { return r.l.Enabled(context.Background(), level) }

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

// retrying are the errors watermill-kafka logs on each retry while the
// brokers are unreachable. The transport's outage watch says, once, that
// they are (and again when they answer), so these go to debug level, their
// error on one line.
var retrying = map[string]bool{
	"Cannot reconnect messages consumer": true,
	"Group consume error":                true,
	"Sarama internal error":              true,
}

func (r renamer) Error(msg string, err error, f watermill.LogFields) {
	if retrying[msg] {
		if r.enabled(slog.LevelDebug) {
			f = rename(f).Add(watermill.LogFields{"error": meta.OneLine(fmt.Sprint(err))})
			r.next.Debug(msg, f)
		}
		return
	}
	r.next.Error(msg, err, rename(f))
}

// Info is logged at debug level (see New).
func (r renamer) Info(msg string, f watermill.LogFields) {
	if r.enabled(slog.LevelDebug) {
		r.next.Info(msg, rename(f))
	}
}

func (r renamer) Debug(msg string, f watermill.LogFields) {
	if r.enabled(slog.LevelDebug) {
		r.next.Debug(msg, rename(f))
	}
}

func (r renamer) Trace(msg string, f watermill.LogFields) {
	if r.trace {
		r.next.Trace(msg, rename(f))
	}
}

func (r renamer) With(f watermill.LogFields) watermill.LoggerAdapter {
	return renamer{next: r.next.With(rename(f)), l: r.l, trace: r.trace}
}
