package app

import (
	"context"
	"errors"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/internal/routing"
	"github.com/eventfx/eventfx/internal/transport"
)

// ReadinessCheck adds a condition to /readyz (HTTPModule): check returns
// nil when ready; /readyz answers 503 naming every check that fails. The
// transport's (a broker answers) and the router's (every handler's
// consumer group joined) are there already.
func ReadinessCheck(name string, check func(ctx context.Context) error) fx.Option {
	return fx.Supply(fx.Annotated{Group: checksGroup, Target: readiness{name: name, check: check}})
}

// readiness is one readiness condition.
type readiness struct {
	name  string
	check func(ctx context.Context) error
}

// checksGroup is the fx value group of readiness checks.
const checksGroup = "eventfx.readiness"

// kafkaCheck reports whether a broker answers.
func kafkaCheck(t transport.Transport) readiness {
	return readiness{name: "kafka", check: t.Ping}
}

// routerCheck reports whether the router runs.
func routerCheck(r *routing.Router) readiness {
	return readiness{name: "router", check: func(context.Context) error {
		select {
		case <-r.Stopping():
			return errors.New("stopping")
		default:
		}
		select {
		case <-r.Running():
			return r.Joined()
		default:
			return errors.New("not running yet")
		}
	}}
}
