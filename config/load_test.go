package config_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
)

// writeFile writes a config file into a fresh directory and returns its path.
func writeFile(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "eventfx.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return path
}

const fileYAML = `
service: billing
kafka:
  brokers: [k1:9092]
  consumer_group: billing-v2
retry:
  max_retries: 7
  max_interval: 1m
shutdown_timeout: 1m
`

func TestLoadFromEnvironmentOverridesFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, fileYAML)
	c, err := config.LoadFrom(path, []string{
		"EVENTFX_KAFKA_BROKERS=a:9092,b:9092",
		"EVENTFX_RETRY_MAX_RETRIES=3",
		"EVENTFX_SHUTDOWN_TIMEOUT=5s",
		"EVENTFX_KAFKA_TLS_ENABLED=true",
		"EVENTFX_RETRY_JITTER=0.5",
		"EVENTFX_PUBLISHER_ALLOWED_TOPICS= orders , payments",
		"EVENTFX_PUBLISHER_MAX_BODY_BYTES=", // empty = unset
		"PATH=/usr/bin",                     // not ours
	})
	require.NoError(t, err)

	want := defaults()
	want.Service = "billing"
	want.Kafka.Brokers = []string{"a:9092", "b:9092"}
	want.Kafka.ConsumerGroup = "billing-v2"
	want.Kafka.TLS.Enabled = true
	want.Retry.MaxRetries = 3
	want.Retry.MaxInterval = time.Minute
	want.Retry.Jitter = 0.5
	want.ShutdownTimeout = 5 * time.Second
	want.Publisher.AllowedTopics = []string{"orders", "payments"}
	assert.Equal(t, want, c)
}

func TestLoadFromFindsFile(t *testing.T) {
	t.Parallel()
	fromEnv := writeFile(t, "service: from-env")
	explicit := writeFile(t, "service: explicit")
	tests := []struct {
		name    string
		path    string
		environ []string
		want    string
	}{
		{"no file", "", nil, "eventfx"},
		{"EVENTFX_CONFIG", "", []string{"EVENTFX_CONFIG=" + fromEnv}, "from-env"},
		{"path wins over EVENTFX_CONFIG", explicit, []string{"EVENTFX_CONFIG=" + fromEnv}, "explicit"},
		{"empty EVENTFX_CONFIG", "", []string{"EVENTFX_CONFIG="}, "eventfx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.LoadFrom(tt.path, tt.environ)
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Service)
		})
	}
}

func TestLoadFromMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := config.LoadFrom(path, nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), path)
}

func TestLoadFromBadYAMLNamesFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "kafka: [unclosed")
	_, err := config.LoadFrom(path, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Empty(t, config.FieldErrors(err))
}

func TestLoadYAMLRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		environ []string
		want    []config.FieldError
	}{
		{
			name: "unknown top-level key",
			yaml: "servce: billing",
			want: []config.FieldError{{Path: "servce", Msg: "unknown key"}},
		},
		{
			name: "unknown nested keys",
			yaml: "kafka: {brokerz: [a:1], group: g}",
			want: []config.FieldError{
				{Path: "kafka.brokerz", Msg: "unknown key"},
				{Path: "kafka.group", Msg: "unknown key"},
			},
		},
		{
			name: "unknown key in a route",
			yaml: "subscriber: {routes: [{name: a, topic: t, webhook: {url: 'http://h', timeot: 1s}}]}",
			want: []config.FieldError{{Path: "subscriber.routes[0].webhook.timeot", Msg: "unknown key"}},
		},
		{
			name: "dotted key",
			yaml: "kafka.brokers: [a:1]",
			want: []config.FieldError{{Path: "kafka.brokers", Msg: `unknown key (nest keys: write "a: {b: 1}", not "a.b: 1")`}},
		},
		{
			name: "camelCase key",
			yaml: "retry: {maxRetries: 3}",
			want: []config.FieldError{{Path: "retry.maxRetries", Msg: "unknown key"}},
		},
		{
			name: "integer",
			yaml: "retry: {max_retries: lots}",
			want: []config.FieldError{{Path: "retry.max_retries", Msg: `must be a whole number, got "lots"`}},
		},
		{
			name: "fractional integer",
			yaml: "kafka: {max_in_flight: 2.5}",
			want: []config.FieldError{{Path: "kafka.max_in_flight", Msg: "must be a whole number, got 2.5"}},
		},
		{
			name: "integer out of range",
			yaml: "publisher: {max_body_bytes: 99999999999999999999}",
			want: []config.FieldError{{Path: "publisher.max_body_bytes", Msg: "must be a whole number, got 1e+20"}},
		},
		{
			name: "duration",
			yaml: "shutdown_timeout: soon",
			want: []config.FieldError{{Path: "shutdown_timeout", Msg: `must be a duration with a unit, such as "30s", got "soon"`}},
		},
		{
			name: "duration without unit",
			yaml: "kafka: {session_timeout: 30}",
			want: []config.FieldError{{Path: "kafka.session_timeout", Msg: `must be a duration with a unit, such as "30s", got 30`}},
		},
		{
			name: "number",
			yaml: "retry: {multiplier: double}",
			want: []config.FieldError{{Path: "retry.multiplier", Msg: `must be a number, got "double"`}},
		},
		{
			name: "bool",
			yaml: "kafka: {tls: {enabled: yes}}",
			want: []config.FieldError{{Path: "kafka.tls.enabled", Msg: `must be true or false, got "yes"`}},
		},
		{
			name: "boolean for an integer",
			yaml: "retry: {max_retries: true}",
			want: []config.FieldError{{Path: "retry.max_retries", Msg: "must be a whole number, got true"}},
		},
		{
			name: "boolean for a string",
			yaml: "kafka: {acks: false}",
			want: []config.FieldError{{Path: "kafka.acks", Msg: "must be a string, got false"}},
		},
		{
			name: "number for a boolean",
			yaml: "kafka: {tls: {enabled: 1}}",
			want: []config.FieldError{{Path: "kafka.tls.enabled", Msg: "must be true or false, got 1"}},
		},
		{
			name: "mapping",
			yaml: "kafka: embedded",
			want: []config.FieldError{{Path: "kafka", Msg: "must be a mapping of keys to values, got a string"}},
		},
		{
			name: "list of mappings",
			yaml: "subscriber: {routes: [orders]}",
			want: []config.FieldError{{Path: "subscriber.routes[0]", Msg: "must be a mapping of keys to values, got a string"}},
		},
		{
			name: "string",
			yaml: "kafka: {brokers: [a:1, {b: 2}]}",
			want: []config.FieldError{{Path: "kafka.brokers[1]", Msg: "must be a string, got a mapping"}},
		},
		{
			name: "secret values are not echoed",
			yaml: "kafka: {sasl: {mechanism: PLAIN, username: u, password: [hunter2]}}",
			want: []config.FieldError{{Path: "kafka.sasl.password", Msg: "must be a string"}},
		},
		{
			name: "nor scalars where a mapping belongs",
			yaml: "http: hunter2",
			want: []config.FieldError{{Path: "http", Msg: "must be a mapping of keys to values, got a string"}},
		},
		{
			name:    "unknown environment variable",
			environ: []string{"EVENTFX_RETRY_MAX_RETRYS=3", "EVENTFX_KAFKA=x"},
			want: []config.FieldError{
				{Path: "EVENTFX_RETRY_MAX_RETRYS", Msg: "environment variable matches no config key"},
				{Path: "EVENTFX_KAFKA", Msg: "environment variable matches no config key"},
			},
		},
		{
			name:    "routes from the environment",
			environ: []string{"EVENTFX_SUBSCRIBER_ROUTES=x"},
			want:    []config.FieldError{{Path: "EVENTFX_SUBSCRIBER_ROUTES", Msg: "subscriber.routes can be set only in the config file"}},
		},
		{
			name:    "wrong type from the environment",
			environ: []string{"EVENTFX_RETRY_MAX_RETRIES=lots"},
			want:    []config.FieldError{{Path: "retry.max_retries", Msg: `must be a whole number, got "lots" (from EVENTFX_RETRY_MAX_RETRIES)`}},
		},
		{
			name:    "invalid value from the environment",
			environ: []string{"EVENTFX_KAFKA_BROKERS=a:9092,b"},
			want:    []config.FieldError{{Path: "kafka.brokers[1]", Msg: `must be host:port, got "b" (from EVENTFX_KAFKA_BROKERS)`}},
		},
		{
			name: "invalid value",
			yaml: "kafka: {initial_offset: latest}",
			want: []config.FieldError{{Path: "kafka.initial_offset", Msg: `must be "oldest" or "newest", got "latest"`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.LoadYAML([]byte(tt.yaml), tt.environ)
			require.Error(t, err)
			assert.Equal(t, tt.want, config.FieldErrors(err))
			assert.Zero(t, c)
		})
	}
}

func TestLoadFromReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
kafka:
  brokers: [a:9092]
  initial_offset: latest   # invalid value
  heartbeat: 1s            # unknown key
retry:
  max_retries: lots        # wrong type
  jitter: 2                # invalid value
shutdown_timeout: soon     # wrong type
subscriber:
  routes:
    - name: hook
      topic: orders
      webhook: {url: "ftp://example.com"}   # invalid value
`)
	_, err := config.LoadFrom(path, []string{"EVENTFX_HTTP_ADDRESS=:80"}) // unknown variable
	require.Error(t, err)

	lines := strings.Split(err.Error(), "\n")
	assert.Equal(t, "invalid config "+path+":", lines[0])
	var paths []string
	for _, fe := range config.FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	assert.ElementsMatch(t, []string{
		"kafka.initial_offset",
		"kafka.heartbeat",
		"retry.max_retries",
		"retry.jitter",
		"shutdown_timeout",
		"subscriber.routes[0].webhook.url",
		"EVENTFX_HTTP_ADDRESS",
	}, paths)
	assert.Len(t, lines, 1+len(paths))
}

func TestLoadYAMLRoutes(t *testing.T) {
	t.Parallel()
	c, err := config.LoadYAML([]byte(`
retry:
  max_retries: 4
  initial_interval: 200ms
subscriber:
  routes:
    - name: billing-hook
      topic: orders
      webhook:
        url: http://127.0.0.1:9000/hook
        timeout: 2s
        secret: s3cret
      retry:
        max_retries: -1
        attempt_timeout: 3s
    - name: audit
      topic: payments
      webhook: {url: "https://audit.example.com/in"}
`), nil)
	require.NoError(t, err)

	require.Len(t, c.Subscriber.Routes, 2)
	assert.Equal(t, config.Route{
		Name:    "billing-hook",
		Topic:   "orders",
		Webhook: config.Webhook{URL: "http://127.0.0.1:9000/hook", Timeout: 2 * time.Second, Secret: "s3cret"},
		Retry:   config.Retry{MaxRetries: config.NoRetries, AttemptTimeout: 3 * time.Second},
	}, c.Subscriber.Routes[0])
	assert.Equal(t, config.Route{
		Name:    "audit",
		Topic:   "payments",
		Webhook: config.Webhook{URL: "https://audit.example.com/in", Timeout: 5 * time.Second},
	}, c.Subscriber.Routes[1])

	want := defaultRetry()
	want.MaxRetries = config.NoRetries
	want.InitialInterval = 200 * time.Millisecond
	want.AttemptTimeout = 3 * time.Second
	effective := c.Retry.Override(c.Subscriber.Routes[0].Retry)
	assert.Equal(t, want, effective)
	assert.Equal(t, 0, effective.EffectiveMaxRetries())
	assert.Equal(t, 4, c.Retry.Override(c.Subscriber.Routes[1].Retry).EffectiveMaxRetries())
}

func TestLoadYAMLAcceptsConvenientForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		got  func(config.Config) any
		want any
	}{
		{"one broker as a string", "kafka: {brokers: 'k:9092'}",
			func(c config.Config) any { return c.Kafka.Brokers }, []string{"k:9092"}},
		{"comma-separated brokers", "kafka: {brokers: 'a:1, b:2'}",
			func(c config.Config) any { return c.Kafka.Brokers }, []string{"a:1", "b:2"}},
		{"numeric password", "kafka: {sasl: {mechanism: PLAIN, username: u, password: 123456}}",
			func(c config.Config) any { return c.Kafka.SASL.Password }, "123456"},
		{"quoted boolean", "kafka: {tls: {enabled: 'true'}}",
			func(c config.Config) any { return c.Kafka.TLS.Enabled }, true},
		{"quoted integer", "retry: {max_retries: '3'}",
			func(c config.Config) any { return c.Retry.MaxRetries }, 3},
		{"integral float", "kafka: {max_in_flight: 1e3}",
			func(c config.Config) any { return c.Kafka.MaxInFlight }, 1000},
		{"compound duration", "shutdown_timeout: 1m30s",
			func(c config.Config) any { return c.ShutdownTimeout }, 90 * time.Second},
		{"zero duration means default", "shutdown_timeout: 0",
			func(c config.Config) any { return c.ShutdownTimeout }, 30 * time.Second},
		{"null means default", "retry: {max_retries: ~}",
			func(c config.Config) any { return c.Retry.MaxRetries }, 5},
		{"per-topic partitioners, topics with dots", "kafka: {partitioners: [{topic: legacy.orders, partitioner: fnv1a}]}",
			func(c config.Config) any {
				return []string{c.Kafka.PartitionerOf("legacy.orders"), c.Kafka.PartitionerOf("orders")}
			},
			[]string{"fnv1a", "murmur2"}},
		{"empty document", "",
			func(c config.Config) any { return c }, defaults()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.LoadYAML([]byte(tt.yaml), nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, tt.got(c))
		})
	}
}

func TestLoadYAMLIgnoresEventfxConfig(t *testing.T) {
	t.Parallel()
	c, err := config.LoadYAML([]byte("service: inline"), []string{"EVENTFX_CONFIG=/does/not/exist.yaml"})
	require.NoError(t, err)
	assert.Equal(t, "inline", c.Service)
}

// The service configs shipped in examples/config load and validate.
func TestExampleConfigsAreValid(t *testing.T) {
	for _, name := range []string{"publisher.yaml", "subscriber.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.LoadFrom(filepath.Join("..", "examples", "config", name), nil)
			require.NoError(t, err)
			require.NoError(t, cfg.WithDefaults().Validate())
		})
	}
}
