package handlers

import "go.uber.org/fx"

// group is the fx value group handlers are registered in.
const group = "eventfx.handlers"

// Register adds handlers to the service's value group.
//
//	fx.New(app.Core(cfg), app.KafkaModule, app.SubscriberModule, handlers.Register(handlers.New("billing", "orders", bill)))
func Register(hs ...Handler) fx.Option {
	opts := make([]fx.Option, 0, len(hs))
	for _, h := range hs {
		opts = append(opts, fx.Supply(fx.Annotated{Group: group, Target: h}))
	}
	return fx.Options(opts...)
}

// AsHandler annotates a constructor returning a Handler (and optionally an
// error) so it joins the handlers group; use it when the handler needs
// dependencies:
//
//	fx.Provide(handlers.AsHandler(func(db *sql.DB) handlers.Handler { ... }))
func AsHandler(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"`+group+`"`))
}
