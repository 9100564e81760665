package kafka

import (
	"context"
	"log/slog"
	"time"

	"github.com/eventfx/eventfx/internal/meta"
)

// How the transport watches its brokers.
const (
	// probeInterval is how often the brokers are asked for metadata.
	probeInterval = time.Second
	// probeTimeout bounds one probe.
	probeTimeout = 2 * time.Second
	// outageReminder is how often a lasting outage is logged again.
	outageReminder = 30 * time.Second
)

// outage is the state of the brokers as the probes see them, and what to
// log about it: one warning when they become unreachable, a reminder every
// outageReminder while they stay so, one info line when they answer again.
// Consumers and the producer retry on their own meanwhile and log their
// retries at debug level, so these lines are the outage's whole story at
// info level.
type outage struct {
	down     bool
	since    time.Time // when the outage began
	reminded time.Time // when it was last logged
}

// event is a line to log: level, message and attributes.
type event struct {
	level slog.Level
	msg   string
	attrs []any
}

// observe takes a probe's result at now and returns the line to log, if any.
func (o *outage) observe(now time.Time, err error, brokers []string) (event, bool) {
	switch {
	case err != nil && !o.down:
		o.down, o.since, o.reminded = true, now, now
		return event{slog.LevelWarn, "kafka unreachable: consuming and publishing wait for it",
			[]any{"brokers", brokers, "error", meta.OneLine(err.Error())}}, true
	case err != nil && now.Sub(o.reminded) >= outageReminder:
		o.reminded = now
		return event{slog.LevelWarn, "kafka still unreachable",
			[]any{"brokers", brokers, "for", now.Sub(o.since).Round(time.Second).String(), "error", meta.OneLine(err.Error())}}, true
	case err == nil && o.down:
		o.down = false
		return event{slog.LevelInfo, "kafka reachable again: consuming and publishing resume",
			[]any{"brokers", brokers, "after", now.Sub(o.since).Round(time.Second).String()}}, true
	}
	return event{}, false
}

// watch probes the brokers with k.Ping every probeInterval until stop is
// closed, logging what outage says.
func (k *Transport) watch(stop <-chan struct{}, brokers []string) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	var o outage
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := k.Ping(ctx)
		cancel()
		select {
		case <-stop:
			return // a probe cut short by Close says nothing of the brokers
		default:
		}
		if e, ok := o.observe(time.Now(), err, brokers); ok {
			k.logger.Log(context.Background(), e.level, e.msg, e.attrs...)
		}
	}
}
