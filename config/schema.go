package config

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Subject name strategies (schema_registry.subject_strategy): the subject a
// schema is registered and looked up under, as Confluent's serializers name
// them.
const (
	// SubjectTopic is "<topic>-value" (Confluent's TopicNameStrategy).
	SubjectTopic = "topic"
	// SubjectRecord is the record's full name, "<namespace>.<name>"
	// (RecordNameStrategy).
	SubjectRecord = "record"
	// SubjectTopicRecord is "<topic>-<namespace>.<name>"
	// (TopicRecordNameStrategy).
	SubjectTopicRecord = "topic_record"
)

// SchemaRegistry is the Confluent Schema Registry of the Avro, Protobuf
// and JSON Schema codecs, `eventfx tail --decode`, `eventfx publish --value-schema`
// and the relay's `decode: json` routes. All fields are optional.
type SchemaRegistry struct {
	// URL is the registry's base URL, http or https. Default empty: with
	// kafka.brokers [embedded], an in-process registry; otherwise the
	// codecs cannot be used.
	URL string `koanf:"url"`
	// Username and Password authenticate with HTTP basic auth. Default
	// none; set both or neither. Password is a secret: never printed.
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	// BearerToken is sent as "Authorization: Bearer <token>". Default
	// none; not with Username. A secret: never printed.
	BearerToken string `koanf:"bearer_token"`
	// SubjectStrategy names subjects: "topic" (default; "<topic>-value"),
	// "record" or "topic_record" (see SubjectTopic).
	SubjectStrategy string `koanf:"subject_strategy"`
	// UseLatest makes encoders use the latest version registered under the
	// subject instead of registering their own schema. Default false:
	// schemas are registered on first use (the registry checks their
	// compatibility).
	UseLatest bool `koanf:"use_latest"`
	// TLS configures an https registry's certificates. Optional.
	TLS SchemaRegistryTLS `koanf:"tls"`
}

// SchemaRegistryTLS configures TLS to an https schema registry. All fields
// are optional; without them the registry is verified against the
// system's roots.
type SchemaRegistryTLS struct {
	// CAFile is a PEM file of the CAs to trust. Default: the system's roots.
	CAFile string `koanf:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and its key, for
	// mutual TLS. Default none; set both or neither.
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// ClientConfig builds the TLS configuration of the registry client: TLS
// 1.2 at least, the registry verified against CAFile (else the system's
// roots), CertFile and KeyFile presented when given. It reads the files;
// its errors name the key of the file that is missing or bad.
func (t SchemaRegistryTLS) ClientConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("schema_registry.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("schema_registry.tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("schema_registry.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// withDefaults returns s with its zero fields set to their defaults.
func (s SchemaRegistry) withDefaults() SchemaRegistry {
	s.SubjectStrategy = cmp.Or(s.SubjectStrategy, SubjectTopic)
	return s
}

// redacted returns s with its secrets replaced.
func (s SchemaRegistry) redacted() SchemaRegistry {
	s.Password = redact(s.Password)
	s.BearerToken = redact(s.BearerToken)
	if u, err := url.Parse(s.URL); err == nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			s.URL = u.Redacted()
		}
	}
	return s
}

// schemaRegistry checks the schema_registry block.
func (p *problems) schemaRegistry(s SchemaRegistry) {
	if s.URL != "" {
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			// The URL is not quoted: it may hold credentials.
			p.add("schema_registry.url", "must be an absolute http or https URL")
		}
	}
	switch {
	case s.Username != "" && s.Password == "":
		p.add("schema_registry.password", "required when username is set")
	case s.Username == "" && s.Password != "":
		p.add("schema_registry.username", "required when password is set")
	}
	if s.BearerToken != "" && s.Username != "" {
		p.add("schema_registry.bearer_token", "must not be set with username (basic auth)")
	}
	p.oneOf("schema_registry.subject_strategy", s.SubjectStrategy, SubjectTopic, SubjectRecord, SubjectTopicRecord)
	switch {
	case s.TLS.CertFile != "" && s.TLS.KeyFile == "":
		p.add("schema_registry.tls.key_file", "required when cert_file is set")
	case s.TLS.CertFile == "" && s.TLS.KeyFile != "":
		p.add("schema_registry.tls.cert_file", "required when key_file is set")
	}
	if s.TLS != (SchemaRegistryTLS{}) && !strings.HasPrefix(s.URL, "https://") {
		p.add("schema_registry.tls", "needs an https schema_registry.url")
	}
}
