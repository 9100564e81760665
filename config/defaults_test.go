package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/eventfx/eventfx/config"
)

// defaults is Config{} with every documented default.
func defaults() config.Config {
	return config.Config{
		Service: "eventfx",
		Kafka: config.Kafka{
			Brokers:           []string{config.Embedded},
			InitialOffset:     config.OffsetOldest,
			Acks:              config.AcksAll,
			Partitioner:       config.PartitionerMurmur2,
			Consume:           config.ConsumePartition,
			MaxInFlight:       256,
			SessionTimeout:    10 * time.Second,
			HeartbeatInterval: 3 * time.Second,
			RebalanceTimeout:  60 * time.Second,
			CommitInterval:    time.Second,
		},
		Retry:           defaultRetry(),
		Poison:          config.Poison{Topic: config.DefaultPoisonTopic},
		SchemaRegistry:  config.SchemaRegistry{SubjectStrategy: config.SubjectTopic},
		ShutdownTimeout: 30 * time.Second,
		HTTP:            config.HTTP{Addr: "127.0.0.1:8080"},
		Publisher:       config.Publisher{MaxBodyBytes: 1 << 20, PublishTimeout: 3 * time.Second},
		Observability: config.Observability{
			Log:     config.Log{Level: config.LogInfo, Format: config.LogText},
			Tracing: config.Tracing{Exporter: config.ExporterNone, SampleRatio: 1},
		},
	}
}

func defaultRetry() config.Retry {
	return config.Retry{
		MaxRetries:      5,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     10 * time.Second,
		Multiplier:      2,
		Jitter:          0.2,
		AttemptTimeout:  30 * time.Second,
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   config.Config
		want func(*config.Config) // applied to defaults()
	}{
		{
			name: "zero config gets every default",
			want: func(*config.Config) {},
		},
		{
			name: "set fields are kept",
			in: config.Config{
				Service:         "billing",
				Kafka:           config.Kafka{Brokers: []string{"k:9092"}, Acks: config.AcksLeader, MaxInFlight: 8},
				Retry:           config.Retry{MaxRetries: 2, Jitter: 0.5},
				ShutdownTimeout: time.Second,
			},
			want: func(c *config.Config) {
				c.Service = "billing"
				c.Kafka.Brokers = []string{"k:9092"}
				c.Kafka.Acks = config.AcksLeader
				c.Kafka.MaxInFlight = 8
				c.Retry.MaxRetries = 2
				c.Retry.Jitter = 0.5
				c.ShutdownTimeout = time.Second
			},
		},
		{
			name: "consumer group is kept apart from service",
			in:   config.Config{Service: "billing", Kafka: config.Kafka{ConsumerGroup: "team"}},
			want: func(c *config.Config) {
				c.Service = "billing"
				c.Kafka.ConsumerGroup = "team"
			},
		},
		{
			name: "NoRetries survives",
			in:   config.Config{Retry: config.Retry{MaxRetries: config.NoRetries}},
			want: func(c *config.Config) { c.Retry.MaxRetries = config.NoRetries },
		},
		{
			name: "routes get a webhook timeout and keep their retry override",
			in: config.Config{Subscriber: config.Subscriber{Routes: []config.Route{
				{Name: "a", Topic: "t", Webhook: config.Webhook{URL: "http://h"}, Retry: config.Retry{MaxRetries: 1}},
				{Name: "b", Topic: "t", Webhook: config.Webhook{URL: "http://h", Timeout: time.Second}},
			}}},
			want: func(c *config.Config) {
				c.Subscriber.Routes = []config.Route{
					{Name: "a", Topic: "t", Webhook: config.Webhook{URL: "http://h", Timeout: 5 * time.Second}, Retry: config.Retry{MaxRetries: 1}},
					{Name: "b", Topic: "t", Webhook: config.Webhook{URL: "http://h", Timeout: time.Second}},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := defaults()
			tt.want(&want)
			assert.Equal(t, want, tt.in.WithDefaults())
		})
	}
}

func TestWithDefaultsDoesNotShareSlices(t *testing.T) {
	t.Parallel()
	in := config.Config{
		Kafka:      config.Kafka{Brokers: []string{"a:1"}},
		Publisher:  config.Publisher{AllowedTopics: []string{"t"}},
		Subscriber: config.Subscriber{Routes: []config.Route{{Name: "r"}}},
	}
	out := in.WithDefaults()
	out.Kafka.Brokers[0] = "changed"
	out.Publisher.AllowedTopics[0] = "changed"
	out.Subscriber.Routes[0].Name = "changed"

	assert.Equal(t, "a:1", in.Kafka.Brokers[0])
	assert.Equal(t, "t", in.Publisher.AllowedTopics[0])
	assert.Equal(t, "r", in.Subscriber.Routes[0].Name)
	assert.Zero(t, in.Subscriber.Routes[0].Webhook.Timeout)
}

func TestRetryOverride(t *testing.T) {
	t.Parallel()
	base := defaultRetry()
	tests := []struct {
		name     string
		override config.Retry
		want     func(*config.Retry) // applied to base
	}{
		{"empty override keeps base", config.Retry{}, func(*config.Retry) {}},
		{
			name:     "set fields replace",
			override: config.Retry{MaxRetries: 9, MaxInterval: time.Minute, Jitter: 0.5},
			want: func(r *config.Retry) {
				r.MaxRetries = 9
				r.MaxInterval = time.Minute
				r.Jitter = 0.5
			},
		},
		{
			name:     "NoRetries replaces",
			override: config.Retry{MaxRetries: config.NoRetries},
			want:     func(r *config.Retry) { r.MaxRetries = config.NoRetries },
		},
		{
			name: "every field replaces",
			override: config.Retry{MaxRetries: 1, InitialInterval: 1, MaxInterval: 2,
				Multiplier: 3, Jitter: 0.4, AttemptTimeout: 5},
			want: func(r *config.Retry) {
				*r = config.Retry{MaxRetries: 1, InitialInterval: 1, MaxInterval: 2,
					Multiplier: 3, Jitter: 0.4, AttemptTimeout: 5}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := base
			tt.want(&want)
			assert.Equal(t, want, base.Override(tt.override))
		})
	}
}

func TestRetryWithDefaults(t *testing.T) {
	t.Parallel()
	assert.Equal(t, defaultRetry(), config.Retry{}.WithDefaults())

	want := defaultRetry()
	want.MaxRetries = config.NoRetries
	want.AttemptTimeout = time.Second
	assert.Equal(t, want, config.Retry{MaxRetries: config.NoRetries, AttemptTimeout: time.Second}.WithDefaults())
}

func TestEffectiveMaxRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		maxRetries int
		want       int
	}{
		{0, 5}, // default
		{config.NoRetries, 0},
		{1, 1},
		{12, 12},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, config.Retry{MaxRetries: tt.maxRetries}.EffectiveMaxRetries(), "MaxRetries %d", tt.maxRetries)
	}
}
