package config

import (
	"cmp"
	"slices"
	"time"
)

// Defaults of the configuration keys, as documented on the fields.
const (
	defaultService           = "eventfx"
	defaultInitialOffset     = OffsetOldest
	defaultAcks              = AcksAll
	defaultPartitioner       = PartitionerMurmur2
	defaultConsume           = ConsumePartition
	defaultMaxInFlight       = 256
	defaultSessionTimeout    = 10 * time.Second
	defaultHeartbeatInterval = 3 * time.Second
	defaultRebalanceTimeout  = 60 * time.Second
	defaultCommitInterval    = time.Second
	defaultMaxRetries        = 5
	defaultInitialInterval   = 100 * time.Millisecond
	defaultMaxInterval       = 10 * time.Second
	defaultMultiplier        = 2
	defaultJitter            = 0.2
	defaultAttemptTimeout    = 30 * time.Second
	defaultShutdownTimeout   = 30 * time.Second
	defaultHTTPAddr          = "127.0.0.1:8080"
	defaultMaxBodyBytes      = 1 << 20
	defaultPublishTimeout    = 3 * time.Second
	defaultWebhookTimeout    = 5 * time.Second
)

// WithDefaults returns a copy of c with every zero field set to the default
// documented on it. Kafka.ConsumerGroup stays empty when unset: the
// consumer-group prefix is then Service, whatever Service becomes later. Each route's
// Webhook.Timeout gets its default, but Route.Retry stays an override: the
// effective policy of a route is c.Retry.Override(route.Retry). The copy
// shares no slices with c.
func (c Config) WithDefaults() Config {
	c.Service = cmp.Or(c.Service, defaultService)

	k := &c.Kafka
	k.Brokers = slices.Clone(k.Brokers)
	if len(k.Brokers) == 0 {
		k.Brokers = []string{Embedded}
	}
	k.InitialOffset = cmp.Or(k.InitialOffset, defaultInitialOffset)
	k.Acks = cmp.Or(k.Acks, defaultAcks)
	k.Partitioner = cmp.Or(k.Partitioner, defaultPartitioner)
	k.Consume = cmp.Or(k.Consume, defaultConsume)
	k.MaxInFlight = cmp.Or(k.MaxInFlight, defaultMaxInFlight)
	k.SessionTimeout = cmp.Or(k.SessionTimeout, defaultSessionTimeout)
	k.HeartbeatInterval = cmp.Or(k.HeartbeatInterval, defaultHeartbeatInterval)
	k.RebalanceTimeout = cmp.Or(k.RebalanceTimeout, defaultRebalanceTimeout)
	k.CommitInterval = cmp.Or(k.CommitInterval, defaultCommitInterval)

	c.Retry = c.Retry.WithDefaults()
	c.Poison.Topic = cmp.Or(c.Poison.Topic, DefaultPoisonTopic)
	c.SchemaRegistry = c.SchemaRegistry.withDefaults()
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, defaultShutdownTimeout)
	c.HTTP.Addr = cmp.Or(c.HTTP.Addr, defaultHTTPAddr)
	o := &c.Observability
	o.Log.Level = cmp.Or(o.Log.Level, LogInfo)
	o.Log.Format = cmp.Or(o.Log.Format, LogText)
	o.Tracing.Exporter = cmp.Or(o.Tracing.Exporter, ExporterNone)
	o.Tracing.SampleRatio = cmp.Or(o.Tracing.SampleRatio, 1)

	c.Publisher.AllowedTopics = slices.Clone(c.Publisher.AllowedTopics)
	c.Publisher.MaxBodyBytes = cmp.Or(c.Publisher.MaxBodyBytes, defaultMaxBodyBytes)
	c.Publisher.PublishTimeout = cmp.Or(c.Publisher.PublishTimeout, defaultPublishTimeout)

	c.Subscriber.Routes = slices.Clone(c.Subscriber.Routes)
	for i := range c.Subscriber.Routes {
		w := &c.Subscriber.Routes[i].Webhook
		w.Timeout = cmp.Or(w.Timeout, defaultWebhookTimeout)
	}
	return c
}

// WithDefaults returns a copy of r with every zero field set to its default.
// MaxRetries NoRetries is kept.
func (r Retry) WithDefaults() Retry {
	return Retry{
		MaxRetries:      defaultMaxRetries,
		InitialInterval: defaultInitialInterval,
		MaxInterval:     defaultMaxInterval,
		Multiplier:      defaultMultiplier,
		Jitter:          defaultJitter,
		AttemptTimeout:  defaultAttemptTimeout,
	}.Override(r)
}

// Override returns r with every non-zero field of o in place of r's. It
// layers a per-route or per-handler override on a base policy:
// base.Override(route.Retry). NoRetries in o overrides; a zero field of o
// cannot override (so an override cannot ask for zero jitter).
func (r Retry) Override(o Retry) Retry {
	r.MaxRetries = cmp.Or(o.MaxRetries, r.MaxRetries)
	r.InitialInterval = cmp.Or(o.InitialInterval, r.InitialInterval)
	r.MaxInterval = cmp.Or(o.MaxInterval, r.MaxInterval)
	r.Multiplier = cmp.Or(o.Multiplier, r.Multiplier)
	r.Jitter = cmp.Or(o.Jitter, r.Jitter)
	r.AttemptTimeout = cmp.Or(o.AttemptTimeout, r.AttemptTimeout)
	return r
}

// EffectiveMaxRetries is the number of retries after the first attempt that
// r allows: MaxRetries with its default applied, and 0 for NoRetries.
func (r Retry) EffectiveMaxRetries() int {
	return max(r.WithDefaults().MaxRetries, 0)
}
