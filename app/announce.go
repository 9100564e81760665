package app

import (
	"cmp"
	"context"
	"log/slog"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/announcement"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/routing"
)

// announceParams are what the service's announcements need.
type announceParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Config
	Logger    *slog.Logger
	Transport *kafka.Transport
	Handlers  []handlers.Handler `group:"eventfx.handlers"`
}

// announce makes the service announce itself on the topic
// eventfx.services (see the console): at start, every 10 seconds, and
// once more at a graceful stop. Announcing never stops the service: a
// failed write is logged and tried again at the next heartbeat.
func announce(p announceParams) {
	hs := make([]announcement.Handler, len(p.Handlers))
	for i, h := range p.Handlers {
		spec := routing.Spec(p.Config, h)
		hs[i] = announcement.Handler{
			Name:          h.Name,
			Topic:         h.Topic,
			PublishTopic:  h.PublishTopic,
			ConsumerGroup: spec.ConsumerGroup,
			Consume:       cmp.Or(spec.Consume, p.Config.Kafka.Consume),
		}
	}
	a := announcement.New(p.Config.Service, p.Config.Poison.Topic, hs, p.Config.Kafka, 0, p.Logger)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if err := a.Start(p.Transport.Brokers()); err != nil {
				p.Logger.Warn("announce the instance", "error", err)
			}
			return nil
		},
		OnStop: a.Stop,
	})
}
