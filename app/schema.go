package app

import (
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/schema"
)

// SchemaModule provides the *schema.Registry of the Schema Registry codecs
// (schema.NewCodec): a client of schema_registry.url or, when that is empty
// and kafka.brokers is [embedded], of an in-process registry, so a service
// runs with nothing installed. /readyz checks that the registry answers
// ("schema_registry"). Without a URL on a real Kafka it fails fx.New.
var SchemaModule = fx.Module("eventfx.schema",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Config) (*schema.Registry, error) {
		r, err := schema.New(cfg)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(r.Close))
		return r, nil
	}),
	fx.Provide(fx.Annotate(schemaCheck, fx.ResultTags(`group:"`+checksGroup+`"`))),
)

// schemaCheck reports whether the schema registry answers.
func schemaCheck(r *schema.Registry) readiness {
	return readiness{name: "schema_registry", check: r.Ping}
}
