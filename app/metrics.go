package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/metrics"
	"github.com/eventfx/eventfx/router"
)

// MetricsModule instruments the service with Prometheus metrics, on the
// *prometheus.Registry it provides (Go and process collectors included;
// HTTPModule serves it at /metrics, and an app without HTTP can gather it):
//
//   - per handler: messages received, handled by outcome, attempts,
//     retries, attempt duration, in flight (a router.Observer);
//   - per topic: messages published by outcome and publish duration, for
//     everything written through the transport's publisher — emitted
//     events, Publisher calls, the gateway's events, poison writes (it
//     decorates Transport);
//   - per consumer group, topic and partition: the consumer lag, asked of
//     the brokers at scrape time;
//   - for key-mode handlers: messages outstanding and in flight, messages
//     held behind an unhandled one and paused partitions (metrics.KeyMode).
//
// The names and their meaning are in package internal/metrics. With
// observability.metrics.disabled it provides the registry alone: no
// observer middleware, no publisher wrapper, no lag queries.
//
// It is an fx.Options rather than an fx.Module: a decoration inside a
// module reaches that module only, and the Transport decoration must reach
// every module that publishes. Include it once, at the top level of the app.
var MetricsModule = fx.Options(
	fx.Module("eventfx.metrics",
		fx.Provide(NewRegistry, newConsumerLag),
		fx.Provide(fx.Annotate(newMetricsObservers, fx.ResultTags(`group:"eventfx.observers,flatten"`))),
	),
	fx.Decorate(meterTransport),
)

// metricsParams are what the metrics constructors need.
type metricsParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Config
	Logger    *slog.Logger
	Registry  *prometheus.Registry
}

// newConsumerLag registers the consumer-lag collector (nil when metrics
// are disabled). It learns the handlers' groups from the observer and the
// brokers from the transport (meterTransport): an app without either
// collects no lag. Its Kafka client is closed at stop.
func newConsumerLag(p metricsParams) (*metrics.Lag, error) {
	if p.Config.Observability.Metrics.Disabled {
		return nil, nil
	}
	lag := metrics.NewLag(metrics.LagConfig{
		Kafka:    p.Config.Kafka,
		ClientID: p.Config.Service + "-metrics",
		Logger:   p.Logger,
	})
	if err := p.Registry.Register(lag); err != nil {
		return nil, fmt.Errorf("register consumer lag: %w", err)
	}
	p.Lifecycle.Append(fx.StopHook(lag.Close))
	return lag, nil
}

// newMetricsObservers registers the message metrics and returns the
// observer that records them (and tells lag the handlers' groups); none
// when metrics are disabled.
func newMetricsObservers(cfg config.Config, reg *prometheus.Registry, lag *metrics.Lag) ([]router.Observer, error) {
	if cfg.Observability.Metrics.Disabled {
		return nil, nil
	}
	m, err := metrics.NewMessages(reg)
	if err != nil {
		return nil, err
	}
	return []router.Observer{metrics.NewObserver(m, lag)}, nil
}

// meterTransport registers the publish metrics, returns t with an
// instrumented publisher, and gives lag t's brokers.
func meterTransport(cfg config.Config, reg *prometheus.Registry, lag *metrics.Lag, t Transport) (Transport, error) {
	if cfg.Observability.Metrics.Disabled {
		return t, nil
	}
	p, err := metrics.NewPublishes(reg)
	if err != nil {
		return nil, err
	}
	lag.SetBrokers(t.Brokers)
	if k, ok := unwrapTransport(t).(*Kafka); ok {
		if err := reg.Register(metrics.NewKeyMode(k.KeyModeGroups)); err != nil {
			return nil, fmt.Errorf("register key-mode metrics: %w", err)
		}
	}
	return meteredTransport{Transport: t, pub: p.Wrap(t.Publisher())}, nil
}

// meteredTransport is a Transport whose publisher records the publish
// metrics. It keeps the transport's readiness probe (Ping).
type meteredTransport struct {
	Transport
	pub message.Publisher
}

func (t meteredTransport) Publisher() message.Publisher { return t.pub }

// Unwrap returns the transport it meters, for code that asks what kind of
// transport it has.
func (t meteredTransport) Unwrap() Transport { return t.Transport }

// Ping reports whether a broker answers, as the wrapped transport does;
// nil when it has no brokers to ask.
func (t meteredTransport) Ping(ctx context.Context) error {
	if p, ok := t.Transport.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}

// unwrapTransport returns the transport under its decorators.
func unwrapTransport(t Transport) Transport {
	for {
		u, ok := t.(interface{ Unwrap() Transport })
		if !ok {
			return t
		}
		t = u.Unwrap()
	}
}
