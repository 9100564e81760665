package config_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

// validConfig is a valid config that uses every section.
func validConfig() config.Config {
	return config.Config{
		Service: "billing",
		Kafka: config.Kafka{
			Brokers: []string{"k1:9092", "[::1]:9093"},
			TLS:     config.TLS{Enabled: true, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"},
			SASL:    config.SASL{Mechanism: config.SASLScramSHA512, Username: "u", Password: "hunter2"},
		},
		HTTP:      config.HTTP{Addr: ":8080", AuthToken: "tok3n"},
		Publisher: config.Publisher{AllowedTopics: []string{"orders", "payments"}},
		Subscriber: config.Subscriber{Routes: []config.Route{
			{Name: "hook-a", Topic: "orders", Webhook: config.Webhook{URL: "http://127.0.0.1:9000/a", Secret: "s3cret"}},
			{Name: "hook-b", Topic: "orders", Webhook: config.Webhook{URL: "https://example.com/b"},
				Retry: config.Retry{MaxRetries: config.NoRetries, MaxInterval: time.Minute}},
		}},
	}.WithDefaults()
}

func TestValidateAcceptsValidConfigs(t *testing.T) {
	t.Parallel()
	tests := map[string]config.Config{
		"defaults":   config.Config{}.WithDefaults(),
		"full":       validConfig(),
		"newest":     config.Config{Kafka: config.Kafka{InitialOffset: config.OffsetNewest}}.WithDefaults(),
		"any port":   config.Config{HTTP: config.HTTP{Addr: "localhost:0"}}.WithDefaults(),
		"no retries": config.Config{Retry: config.Retry{MaxRetries: config.NoRetries}}.WithDefaults(),
	}
	for name, c := range tests {
		assert.NoError(t, c.Validate(), name)
	}
}

func TestValidateReportsBadField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   config.FieldError
	}{
		{"service", func(c *config.Config) { c.Service = "my service"; c.Kafka.ConsumerGroup = "g" },
			config.FieldError{Path: "service", Msg: `must contain only letters, digits, '.', '_' and '-', got "my service"`}},
		{"no brokers", func(c *config.Config) { c.Kafka.Brokers = nil },
			config.FieldError{Path: "kafka.brokers", Msg: `required: host:port entries, or "embedded"`}},
		{"broker without port", func(c *config.Config) { c.Kafka.Brokers = []string{"a:1", "b"} },
			config.FieldError{Path: "kafka.brokers[1]", Msg: `must be host:port, got "b"`}},
		{"broker port", func(c *config.Config) { c.Kafka.Brokers = []string{"a:99999"} },
			config.FieldError{Path: "kafka.brokers[0]", Msg: `port must be a number from 1 to 65535, got "99999"`}},
		{"embedded among brokers", func(c *config.Config) { c.Kafka.Brokers = []string{"a:1", "embedded"} },
			config.FieldError{Path: "kafka.brokers[1]", Msg: `"embedded" must be the only broker`}},
		{"consumer group", func(c *config.Config) { c.Kafka.ConsumerGroup = "a/b" },
			config.FieldError{Path: "kafka.consumer_group", Msg: `must contain only letters, digits, '.', '_' and '-', got "a/b"`}},
		{"initial offset", func(c *config.Config) { c.Kafka.InitialOffset = "latest" },
			config.FieldError{Path: "kafka.initial_offset", Msg: `must be "oldest" or "newest", got "latest"`}},
		{"acks", func(c *config.Config) { c.Kafka.Acks = "1" },
			config.FieldError{Path: "kafka.acks", Msg: `must be "all" or "leader", got "1"`}},
		{"partitioner", func(c *config.Config) { c.Kafka.Partitioner = "sticky" },
			config.FieldError{Path: "kafka.partitioner", Msg: `must be "murmur2", "fnv1a" or "crc32", got "sticky"`}},
		{"topic partitioner", func(c *config.Config) {
			c.Kafka.Partitioners = []config.TopicPartitioner{{Topic: "legacy.orders", Partitioner: "fnv1a"}, {Topic: "a", Partitioner: "java"}}
		}, config.FieldError{Path: "kafka.partitioners[1].partitioner", Msg: `must be "murmur2", "fnv1a" or "crc32", got "java"`}},
		{"topic partitioner's topic", func(c *config.Config) {
			c.Kafka.Partitioners = []config.TopicPartitioner{{Topic: "a b", Partitioner: "fnv1a"}}
		}, config.FieldError{Path: "kafka.partitioners[0].topic", Msg: `must contain only letters, digits, '.', '_' and '-', got "a b"`}},
		{"topic partitioner twice", func(c *config.Config) {
			c.Kafka.Partitioners = []config.TopicPartitioner{{Topic: "a", Partitioner: "fnv1a"}, {Topic: "a", Partitioner: "crc32"}}
		}, config.FieldError{Path: "kafka.partitioners[1].topic", Msg: `"a" is listed twice`}},
		{"log level", func(c *config.Config) { c.Observability.Log.Level = "verbose" },
			config.FieldError{Path: "observability.log.level", Msg: `must be "debug", "info", "warn" or "error", got "verbose"`}},
		{"otlp needs an endpoint", func(c *config.Config) { c.Observability.Tracing.Exporter = config.ExporterOTLP },
			config.FieldError{Path: "observability.tracing.endpoint", Msg: "required when the exporter is otlp"}},
		{"sample ratio", func(c *config.Config) { c.Observability.Tracing.SampleRatio = 2 },
			config.FieldError{Path: "observability.tracing.sample_ratio", Msg: "must be between 0 and 1, got 2"}},
		{"consume", func(c *config.Config) { c.Kafka.Consume = "batch" },
			config.FieldError{Path: "kafka.consume", Msg: `must be "partition" or "key", got "batch"`}},
		{"max in flight", func(c *config.Config) { c.Kafka.MaxInFlight = -1 },
			config.FieldError{Path: "kafka.max_in_flight", Msg: "must be positive, got -1"}},
		{"session timeout", func(c *config.Config) { c.Kafka.SessionTimeout = -time.Second },
			config.FieldError{Path: "kafka.session_timeout", Msg: "must be a positive duration, got -1s"}},
		{"heartbeat not below session timeout", func(c *config.Config) { c.Kafka.HeartbeatInterval = 10 * time.Second },
			config.FieldError{Path: "kafka.heartbeat_interval", Msg: "must be less than kafka.session_timeout (10s), got 10s"}},
		{"rebalance timeout", func(c *config.Config) { c.Kafka.RebalanceTimeout = -1 },
			config.FieldError{Path: "kafka.rebalance_timeout", Msg: "must be a positive duration, got -1ns"}},
		{"commit interval", func(c *config.Config) { c.Kafka.CommitInterval = -1 },
			config.FieldError{Path: "kafka.commit_interval", Msg: "must be a positive duration, got -1ns"}},
		{"cert without key", func(c *config.Config) { c.Kafka.TLS.KeyFile = "" },
			config.FieldError{Path: "kafka.tls.key_file", Msg: "required when cert_file is set"}},
		{"key without cert", func(c *config.Config) { c.Kafka.TLS.CertFile = "" },
			config.FieldError{Path: "kafka.tls.cert_file", Msg: "required when key_file is set"}},
		{"tls files without tls", func(c *config.Config) { c.Kafka.TLS.Enabled = false },
			config.FieldError{Path: "kafka.tls.enabled", Msg: "must be true when ca_file, cert_file or key_file is set"}},
		{"sasl mechanism", func(c *config.Config) { c.Kafka.SASL.Mechanism = "plain" },
			config.FieldError{Path: "kafka.sasl.mechanism", Msg: `must be "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512", got "plain"`}},
		{"sasl username", func(c *config.Config) { c.Kafka.SASL.Username = "" },
			config.FieldError{Path: "kafka.sasl.username", Msg: "required when mechanism is set"}},
		{"sasl password", func(c *config.Config) { c.Kafka.SASL.Password = "" },
			config.FieldError{Path: "kafka.sasl.password", Msg: "required when mechanism is set"}},
		{"sasl credentials without mechanism", func(c *config.Config) { c.Kafka.SASL.Mechanism = "" },
			config.FieldError{Path: "kafka.sasl.mechanism", Msg: "required when username or password is set"}},
		{"max retries", func(c *config.Config) { c.Retry.MaxRetries = -2 },
			config.FieldError{Path: "retry.max_retries", Msg: "must be positive, or -1 for no retries; got -2"}},
		{"initial interval", func(c *config.Config) { c.Retry.InitialInterval = -time.Second },
			config.FieldError{Path: "retry.initial_interval", Msg: "must be a positive duration, got -1s"}},
		{"max interval below initial", func(c *config.Config) { c.Retry.MaxInterval = 50 * time.Millisecond },
			config.FieldError{Path: "retry.max_interval", Msg: "must be at least initial_interval (100ms), got 50ms"}},
		{"multiplier", func(c *config.Config) { c.Retry.Multiplier = 0.5 },
			config.FieldError{Path: "retry.multiplier", Msg: "must be a finite number >= 1, got 0.5"}},
		{"multiplier NaN", func(c *config.Config) { c.Retry.Multiplier = math.NaN() },
			config.FieldError{Path: "retry.multiplier", Msg: "must be a finite number >= 1, got NaN"}},
		{"jitter", func(c *config.Config) { c.Retry.Jitter = 1.5 },
			config.FieldError{Path: "retry.jitter", Msg: "must be between 0 and 1, got 1.5"}},
		{"attempt timeout", func(c *config.Config) { c.Retry.AttemptTimeout = -1 },
			config.FieldError{Path: "retry.attempt_timeout", Msg: "must be a positive duration, got -1ns"}},
		{"poison topic", func(c *config.Config) { c.Poison.Topic = "poison queue" },
			config.FieldError{Path: "poison.topic", Msg: `must contain only letters, digits, '.', '_' and '-', got "poison queue"`}},
		{"shutdown timeout", func(c *config.Config) { c.ShutdownTimeout = -time.Second },
			config.FieldError{Path: "shutdown_timeout", Msg: "must be a positive duration, got -1s"}},
		{"http addr", func(c *config.Config) { c.HTTP.Addr = "8080" },
			config.FieldError{Path: "http.addr", Msg: `must be host:port, got "8080"`}},
		{"allowed topic", func(c *config.Config) { c.Publisher.AllowedTopics = []string{"ok", ".."} },
			config.FieldError{Path: "publisher.allowed_topics[1]", Msg: `must not be "." or "..", got ".."`}},
		{"poison topic allowed", func(c *config.Config) { c.Publisher.AllowedTopics = []string{"eventfx.poison"} },
			config.FieldError{Path: "publisher.allowed_topics[0]", Msg: "must not be the poison topic"}},
		{"max body bytes", func(c *config.Config) { c.Publisher.MaxBodyBytes = -1 },
			config.FieldError{Path: "publisher.max_body_bytes", Msg: "must be positive, got -1"}},
		{"route whsec secret not base64", func(c *config.Config) { c.Subscriber.Routes[0].Webhook.Secret = "whsec_%%%" },
			config.FieldError{Path: "subscriber.routes[0].webhook.secret", Msg: `the text after "whsec_" must be non-empty base64 (Standard Webhooks)`}},
		{"route name missing", func(c *config.Config) { c.Subscriber.Routes[1].Name = "" },
			config.FieldError{Path: "subscriber.routes[1].name", Msg: "required"}},
		{"route name duplicate", func(c *config.Config) { c.Subscriber.Routes[1].Name = "hook-a" },
			config.FieldError{Path: "subscriber.routes[1].name", Msg: `"hook-a" is also the name of subscriber.routes[0]`}},
		{"route name characters", func(c *config.Config) { c.Subscriber.Routes[0].Name = "hook a" },
			config.FieldError{Path: "subscriber.routes[0].name", Msg: `must contain only letters, digits, '.', '_' and '-', got "hook a"`}},
		{"route topic missing", func(c *config.Config) { c.Subscriber.Routes[0].Topic = "" },
			config.FieldError{Path: "subscriber.routes[0].topic", Msg: "required"}},
		{"route topic illegal", func(c *config.Config) { c.Subscriber.Routes[0].Topic = "orders!" },
			config.FieldError{Path: "subscriber.routes[0].topic", Msg: `must contain only letters, digits, '.', '_' and '-', got "orders!"`}},
		{"webhook url missing", func(c *config.Config) { c.Subscriber.Routes[1].Webhook.URL = "" },
			config.FieldError{Path: "subscriber.routes[1].webhook.url", Msg: "required"}},
		{"webhook url scheme", func(c *config.Config) { c.Subscriber.Routes[1].Webhook.URL = "ftp://example.com" },
			config.FieldError{Path: "subscriber.routes[1].webhook.url", Msg: "must be an absolute http or https URL"}},
		{"webhook url relative", func(c *config.Config) { c.Subscriber.Routes[1].Webhook.URL = "/hook" },
			config.FieldError{Path: "subscriber.routes[1].webhook.url", Msg: "must be an absolute http or https URL"}},
		{"webhook timeout", func(c *config.Config) { c.Subscriber.Routes[0].Webhook.Timeout = -1 },
			config.FieldError{Path: "subscriber.routes[0].webhook.timeout", Msg: "must be a positive duration, got -1ns"}},
		{"route consume", func(c *config.Config) { c.Subscriber.Routes[0].Consume = "keys" },
			config.FieldError{Path: "subscriber.routes[0].consume", Msg: `must be "partition" or "key", got "keys"`}},
		{"route max in flight", func(c *config.Config) { c.Subscriber.Routes[1].MaxInFlight = -1 },
			config.FieldError{Path: "subscriber.routes[1].max_in_flight", Msg: "must be positive, got -1"}},
		{"route retry jitter", func(c *config.Config) { c.Subscriber.Routes[1].Retry.Jitter = -0.1 },
			config.FieldError{Path: "subscriber.routes[1].retry.jitter", Msg: "must be between 0 and 1, got -0.1"}},
		{"route retry max retries", func(c *config.Config) { c.Subscriber.Routes[1].Retry.MaxRetries = -5 },
			config.FieldError{Path: "subscriber.routes[1].retry.max_retries", Msg: "must be positive, or -1 for no retries; got -5"}},
		{"route retry initial above service max", func(c *config.Config) { c.Subscriber.Routes[0].Retry.InitialInterval = time.Minute },
			config.FieldError{Path: "subscriber.routes[0].retry.initial_interval", Msg: "must be at most retry.max_interval (10s), got 1m0s"}},
		{"route retry max below initial", func(c *config.Config) { c.Subscriber.Routes[1].Retry.MaxInterval = time.Millisecond },
			config.FieldError{Path: "subscriber.routes[1].retry.max_interval", Msg: "must be at least initial_interval (100ms), got 1ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			assert.Equal(t, []config.FieldError{tt.want}, config.FieldErrors(err))
		})
	}
}

func TestValidateReportsEveryBadFieldAtOnce(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Kafka.InitialOffset = "latest"
	c.Kafka.Brokers = []string{"a:1", "nope"}
	c.Retry.Jitter = 2
	c.Retry.Multiplier = 0
	c.HTTP.Addr = "nope"
	c.Subscriber.Routes[1].Webhook.URL = "mailto:x@example.com"
	c.Subscriber.Routes[0].Name = ""

	err := c.Validate()
	require.Error(t, err)

	var paths []string
	for _, fe := range config.FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{
		"kafka.brokers[1]",
		"kafka.initial_offset",
		"retry.multiplier",
		"retry.jitter",
		"http.addr",
		"subscriber.routes[0].name",
		"subscriber.routes[1].webhook.url",
	}, paths)

	lines := strings.Split(err.Error(), "\n")
	assert.Equal(t, "invalid config:", lines[0])
	assert.Equal(t, `retry.jitter: must be between 0 and 1, got 2`, lines[4])

	var fe config.FieldError
	require.True(t, errors.As(err, &fe), "errors.As finds a FieldError")
	assert.Equal(t, "kafka.brokers[1]", fe.Path)
}

func TestValidateZeroConfigNeedsDefaults(t *testing.T) {
	t.Parallel()
	err := config.Config{}.Validate()
	assert.Contains(t, config.FieldErrors(err), config.FieldError{Path: "service", Msg: "required"})
	assert.Contains(t, config.FieldErrors(err), config.FieldError{Path: "shutdown_timeout", Msg: "must be a positive duration, got 0s"})
}

func TestValidateNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Kafka.SASL.Mechanism = "GSSAPI"
	c.Subscriber.Routes[0].Webhook.URL = "ftp://user:pa55word@example.com"
	c.Subscriber.Routes[0].Webhook.Timeout = -1
	c.HTTP.Addr = "bad"

	err := c.Validate()
	require.Error(t, err)
	for _, secret := range []string{"hunter2", "pa55word", "tok3n", "s3cret"} {
		assert.NotContains(t, err.Error(), secret)
	}
}

func TestValidTopicName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // error message; "" = valid
	}{
		{"orders", ""},
		{"Orders.v2_created-x", ""},
		{strings.Repeat("a", 249), ""},
		{"...", ""},
		{"", "must not be empty"},
		{strings.Repeat("a", 250), "must be at most 249 characters, got 250"},
		{".", `must not be "." or "..", got "."`},
		{"..", `must not be "." or "..", got ".."`},
		{"a b", `must contain only letters, digits, '.', '_' and '-', got "a b"`},
		{"a/b", `must contain only letters, digits, '.', '_' and '-', got "a/b"`},
		{"ordérs", `must contain only letters, digits, '.', '_' and '-', got "ordérs"`},
	}
	for _, tt := range tests {
		err := config.ValidTopicName(tt.name)
		assert.Equal(t, tt.want, errString(err), "topic %q", tt.name)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
