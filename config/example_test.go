package config_test

import (
	"fmt"

	"github.com/eventfx/eventfx/config"
)

// A service loads its file (from --config or EVENTFX_CONFIG) and the
// EVENTFX_* environment once at start; the error lists every problem.
func ExampleLoad() {
	cfg, err := config.Load("") // "" = the file named by EVENTFX_CONFIG, if any
	if err != nil {
		fmt.Println(err) // every problem, one per line
		return
	}
	fmt.Println(cfg.Kafka.Brokers)
}

func ExampleLoadYAML() {
	yaml := []byte(`
service: billing
kafka:
  brokers: [127.0.0.1:9092]
retry:
  max_retries: 3
subscriber:
  routes:
    - name: billing-hook
      topic: orders
      webhook: {url: "http://127.0.0.1:9000/hook"}
      retry: {max_retries: -1}
`)
	environ := []string{"EVENTFX_RETRY_MAX_INTERVAL=30s"}

	cfg, err := config.LoadYAML(yaml, environ)
	if err != nil {
		fmt.Println(err)
		return
	}
	route := cfg.Subscriber.Routes[0]
	fmt.Println(cfg.Service, cfg.Kafka.Brokers, cfg.Retry.MaxRetries, cfg.Retry.MaxInterval)
	fmt.Println(route.Name, route.Webhook.Timeout, cfg.Retry.Override(route.Retry).EffectiveMaxRetries())
	// Output:
	// billing [127.0.0.1:9092] 3 30s
	// billing-hook 5s 0
}

func ExampleLoadYAML_errors() {
	yaml := []byte(`
kafka:
  initial_offset: latest
  brokerz: [127.0.0.1:9092]
retry:
  max_retries: lots
`)
	_, err := config.LoadYAML(yaml, []string{"EVENTFX_SHUTDOWN_TIMEOUT=soon", "EVENTFX_HTTP_PORT=80"})
	fmt.Println(err)
	// Output:
	// invalid config:
	// kafka.brokerz: unknown key
	// retry.max_retries: must be a whole number, got "lots"
	// shutdown_timeout: must be a duration with a unit, such as "30s", got "soon" (from EVENTFX_SHUTDOWN_TIMEOUT)
	// EVENTFX_HTTP_PORT: environment variable matches no config key
	// kafka.initial_offset: must be "oldest" or "newest", got "latest"
}

func ExampleConfig_Validate() {
	cfg := config.Config{Kafka: config.Kafka{Acks: "1"}}.WithDefaults()
	cfg.Retry.Jitter = 2
	fmt.Println(cfg.Validate())
	// Output:
	// invalid config:
	// kafka.acks: must be "all" or "leader", got "1"
	// retry.jitter: must be between 0 and 1, got 2
}
