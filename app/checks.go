package app

import (
	"context"
	"errors"

	"github.com/eventfx/eventfx/router"
)

// kafkaCheck reports whether a broker answers.
func kafkaCheck(t Transport) Check {
	return Check{Name: "kafka", Check: func(ctx context.Context) error {
		p, ok := t.(interface{ Ping(context.Context) error })
		if !ok {
			return nil
		}
		return p.Ping(ctx)
	}}
}

// routerCheck reports whether the router runs.
func routerCheck(r *router.Router) Check {
	return Check{Name: "router", Check: func(context.Context) error {
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
