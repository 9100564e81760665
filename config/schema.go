package config

import (
	"cmp"
	"net/url"
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
}
