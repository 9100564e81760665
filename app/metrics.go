package app

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/metrics"
	"github.com/eventfx/eventfx/internal/transport"
	"github.com/eventfx/eventfx/router"
)

// MetricsModule instruments the service with Prometheus metrics, on the
// *prometheus.Registry it provides (Go and process collectors included;
// HTTPModule serves it at /metrics, and an app without HTTP can gather it):
//
//   - per handler: messages received, handled by outcome, attempts,
//     retries, attempt duration, in flight (an observer, after tracing's);
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
// every module that publishes. app.Core includes it: an app never adds it.
var MetricsModule = fx.Options(
	fx.Module("eventfx.metrics",
		fx.Provide(newRegistry, newConsumerLag),
		fx.Provide(fx.Annotate(newMetricsObserver, fx.ResultTags(`name:"eventfx.metrics"`))),
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
	k := p.Config.Kafka
	lag := metrics.NewLag(metrics.LagConfig{
		Kafka: k,
		Connect: func(brokers []string) ([]kgo.Opt, error) {
			return kafka.ClientOpts(brokers, k, p.Config.Service+"-metrics")
		},
		Logger: p.Logger,
	})
	if err := p.Registry.Register(lag); err != nil {
		return nil, fmt.Errorf("register consumer lag: %w", err)
	}
	p.Lifecycle.Append(fx.StopHook(lag.Close))
	return lag, nil
}

// newMetricsObserver registers the message metrics and returns the
// observer that records them (and tells lag the handlers' groups); nil
// when metrics are disabled.
func newMetricsObserver(cfg config.Config, reg *prometheus.Registry, lag *metrics.Lag) (router.Observer, error) {
	if cfg.Observability.Metrics.Disabled {
		return nil, nil
	}
	m, err := metrics.NewMessages(reg)
	if err != nil {
		return nil, err
	}
	return metrics.NewObserver(m, lag), nil
}

// meterParams are what meterTransport needs.
type meterParams struct {
	fx.In
	Config    config.Config
	Registry  *prometheus.Registry
	Lag       *metrics.Lag
	Transport transport.Transport
	// Kafka is KafkaModule's transport, whose key-mode subscribers have
	// metrics of their own.
	Kafka *kafka.Transport `optional:"true"`
}

// meterTransport registers the publish metrics (and the key-mode ones for
// Kafka), returns the transport with an instrumented publisher, and gives
// lag its brokers.
func meterTransport(p meterParams) (transport.Transport, error) {
	t := p.Transport
	if p.Config.Observability.Metrics.Disabled {
		return t, nil
	}
	pubs, err := metrics.NewPublishes(p.Registry)
	if err != nil {
		return nil, err
	}
	p.Lag.SetBrokers(t.Brokers)
	if p.Kafka != nil {
		if err := p.Registry.Register(metrics.NewKeyMode(p.Kafka.KeyModeGroups)); err != nil {
			return nil, fmt.Errorf("register key-mode metrics: %w", err)
		}
	}
	return meteredTransport{Transport: t, pub: pubs.Wrap(t.Publisher())}, nil
}

// meteredTransport is a transport whose publisher records the publish
// metrics. Every other capability of the transport (transport.Transport)
// is the embedded one's.
type meteredTransport struct {
	transport.Transport
	pub transport.Publisher
}

func (t meteredTransport) Publisher() transport.Publisher { return t.pub }
