package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/schema"
)

// registryFlag adds --schema-registry to a command that reads or writes
// Schema-Registry-framed values.
func registryFlag(cmd *cobra.Command, url *string) {
	cmd.Flags().StringVar(url, "schema-registry", "", "Schema Registry URL or host:port (default: schema_registry.url from --config/EVENTFX_SCHEMA_REGISTRY_URL)")
}

// openRegistry returns a client of the registry the flag (else the
// config) names; the caller closes it.
func openRegistry(flag string, cfg config.Config) (*schema.Registry, error) {
	url := flag
	if url == "" {
		url = cfg.SchemaRegistry.URL
	}
	if url == "" {
		return nil, errors.New("no schema registry: give --schema-registry URL (eventfx broker --schema-registry ADDR serves one) or set schema_registry.url")
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	cfg.SchemaRegistry.URL = url
	if err := cfg.WithDefaults().Validate(); err != nil {
		return nil, err
	}
	return schema.New(cfg)
}

// schemaFile reads a schema file and its format from its extension.
func schemaFile(path string) (schema.Format, string, error) {
	var f schema.Format
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".avsc":
		f = schema.FormatAvro
	case ".json":
		f = schema.FormatJSON
	case ".proto":
		f = schema.FormatProtobuf
	default:
		return "", "", fmt.Errorf("--value-schema %s: unknown schema file extension %q (want .avsc for Avro, .json for JSON Schema or .proto for Protobuf)", path, ext)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("--value-schema: %w", err)
	}
	return f, string(b), nil
}
