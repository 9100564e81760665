package app

import (
	"log/slog"

	"go.uber.org/dig"
	"go.uber.org/fx/fxevent"
)

// fxLogger is fx's logger in an eventfx service. fx's own events (what it
// provides, invokes, starts) are logged at debug level. A start or stop
// that fails is reported once, at error level, with its cause first in
// eventfx's words, unless the caller reports it itself (Run returns the
// error to its main): a `fx.New(...).Run()` main then prints why it exits,
// where fx alone would exit 1 with nothing printed at info level.
type fxLogger struct {
	events *fxevent.SlogLogger
	logger *slog.Logger
	// report: log failed starts and stops at error level.
	report bool
}

func newFxLogger(logger *slog.Logger, report bool) *fxLogger {
	events := &fxevent.SlogLogger{Logger: logger}
	events.UseLogLevel(slog.LevelDebug)
	events.UseErrorLevel(slog.LevelDebug)
	return &fxLogger{events: events, logger: logger, report: report}
}

// LogEvent implements fxevent.Logger. fx reports a failed start several
// times (the hook, the rollback, the start); only fxevent.Started, which
// every failed start ends with (fx.New's errors included), is reported
// at error level. fx's full chain stays at debug level.
func (l *fxLogger) LogEvent(ev fxevent.Event) {
	if l.report {
		switch e := ev.(type) {
		case *fxevent.Started:
			if e.Err != nil {
				l.logger.Error("start failed", "error", describe(e.Err).Error())
			}
		case *fxevent.Stopped:
			if e.Err != nil {
				l.logger.Error("stop failed", "error", describe(e.Err).Error())
			}
		}
	}
	l.events.LogEvent(ev)
}

// describe returns err with its cause first: an error fx reports for a
// constructor or an invoke wraps the constructor's own error in fx's and
// dig's account of where it was called ("could not build arguments for
// function … failed to build *router.Router: …"), which says more about fx
// than about the mistake. The returned error reads as the cause alone and
// unwraps to err, so errors.Is and errors.As still see the whole chain.
func describe(err error) error {
	if err == nil {
		return nil
	}
	cause := dig.RootCause(err)
	if cause == nil || cause == err {
		return err
	}
	return &causeFirst{cause: cause, err: err}
}

// causeFirst is an fx error told by its cause.
type causeFirst struct{ cause, err error }

func (e *causeFirst) Error() string { return e.cause.Error() }

func (e *causeFirst) Unwrap() error { return e.err }
