package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/eventfx/eventfx/config"
)

func TestSchemaRegistryValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    config.SchemaRegistry
		want []string // paths of the fields reported
	}{
		{"empty is valid", config.SchemaRegistry{}, nil},
		{"a URL with basic auth", config.SchemaRegistry{URL: "https://sr.example.com", Username: "u", Password: "p"}, nil},
		{"a bearer token", config.SchemaRegistry{URL: "http://127.0.0.1:8085", BearerToken: "t"}, nil},
		{"not a URL", config.SchemaRegistry{URL: "127.0.0.1:8085"}, []string{"schema_registry.url"}},
		{"a password alone", config.SchemaRegistry{Password: "p"}, []string{"schema_registry.username"}},
		{"a username alone", config.SchemaRegistry{Username: "u"}, []string{"schema_registry.password"}},
		{"basic auth and a token", config.SchemaRegistry{Username: "u", Password: "p", BearerToken: "t"}, []string{"schema_registry.bearer_token"}},
		{"an unknown strategy", config.SchemaRegistry{SubjectStrategy: "wire"}, []string{"schema_registry.subject_strategy"}},
		{"TLS files for https", config.SchemaRegistry{URL: "https://sr", TLS: config.SchemaRegistryTLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}}, nil},
		{"TLS files for http", config.SchemaRegistry{URL: "http://sr", TLS: config.SchemaRegistryTLS{CAFile: "ca.pem"}}, []string{"schema_registry.tls"}},
		{"a certificate without its key", config.SchemaRegistry{URL: "https://sr", TLS: config.SchemaRegistryTLS{CertFile: "c.pem"}}, []string{"schema_registry.tls.key_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := config.Config{SchemaRegistry: tt.s}.WithDefaults().Validate()
			var paths []string
			for _, fe := range config.FieldErrors(err) {
				paths = append(paths, fe.Path)
			}
			assert.Equal(t, tt.want, paths, "%v", err)
		})
	}
}

func TestRouteDecodeValidation(t *testing.T) {
	t.Parallel()
	route := config.Route{Name: "r", Topic: "t", Webhook: config.Webhook{URL: "http://127.0.0.1:9/h"}, Decode: "avro"}
	err := config.Config{Subscriber: config.Subscriber{Routes: []config.Route{route}}}.WithDefaults().Validate()
	fes := config.FieldErrors(err)
	if assert.Len(t, fes, 1, "%v", err) {
		assert.Equal(t, "subscriber.routes[0].decode", fes[0].Path)
	}
	route.Decode = config.DecodeJSON
	assert.NoError(t, config.Config{Subscriber: config.Subscriber{Routes: []config.Route{route}}}.WithDefaults().Validate())
}

func TestSchemaRegistrySecretsAreNeverPrinted(t *testing.T) {
	t.Parallel()
	c := config.Config{SchemaRegistry: config.SchemaRegistry{URL: "https://u:url-secret@sr.example.com", Username: "u", Password: "pw-secret", BearerToken: "token-secret"}}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		for _, secret := range []string{"url-secret", "pw-secret", "token-secret"} {
			assert.False(t, strings.Contains(s, secret), "%s printed: %s", secret, s)
		}
	}
}

func TestSchemaRegistryFromTheEnvironment(t *testing.T) {
	t.Setenv("EVENTFX_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8085")
	t.Setenv("EVENTFX_SCHEMA_REGISTRY_SUBJECT_STRATEGY", "record")
	cfg, err := config.Load("")
	if assert.NoError(t, err) {
		assert.Equal(t, "http://127.0.0.1:8085", cfg.SchemaRegistry.URL)
		assert.Equal(t, config.SubjectRecord, cfg.SchemaRegistry.SubjectStrategy)
	}
}
