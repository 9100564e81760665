// Command publisher is the HTTP → Kafka event gateway: POST
// /v1/events/{topic} publishes the request body to the topic and answers
// 202 once the broker acknowledged it. /healthz, /readyz and /metrics are
// served on the same address (http.addr).
//
//	publisher [--config FILE]
//
// Configuration comes from the YAML file (or $EVENTFX_CONFIG) and EVENTFX_*
// variables: kafka.brokers, http.addr, http.auth_token,
// publisher.allowed_topics, publisher.max_body_bytes, ...
package main

import (
	"errors"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/gateway"
)

func main() {
	if err := app.Run(os.Args[1:], build); err != nil {
		fmt.Fprintln(os.Stderr, "publisher:", err)
		code := 1
		if e, ok := errors.AsType[app.ExitError](err); ok {
			code = e.Code
		}
		os.Exit(code)
	}
}

// build is the publisher service: the Kafka transport, the publisher, the
// HTTP server and the gateway mounted on it.
func build(config.Config) fx.Option {
	return fx.Options(
		app.KafkaModule,
		app.PublisherModule,
		app.HTTPModule,
		gateway.Module,
	)
}
