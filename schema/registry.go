// Package schema reads and writes values in Confluent's Schema Registry
// wire format: a magic byte 0, the schema's registry ID as 4 big-endian
// bytes, for Protobuf the message indexes, then the value encoded with
// that schema (Avro binary, Protobuf binary, or JSON checked against a
// JSON Schema). A Codec plugs it into typed handlers
// (handlers.WithCodec) and the Publisher (app.Publisher.WithCodec); a
// Registry is the client of the registry the codecs share, with its
// caches.
//
//	reg, _ := schema.New(cfg) // schema_registry.url, or the in-process registry with an embedded broker
//	codec, _ := schema.NewCodec(reg, schema.Avro[OrderPlaced](orderSchema), schema.Avro[PaymentCaptured](paymentSchema))
//	handlers.NewEmitting("billing", "orders", "payments", bill, handlers.WithCodec(codec))
//
// A value that is not framed, names a schema ID the registry does not
// know, or does not decode with its schema is a permanent error (the
// message is poisoned at once, with the schema ID and subject in the
// reason); a registry that does not answer is transient
// (handlers.ErrCodecUnavailable): retried, then poisoned.
package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/registry"
)

// Format is a schema language, as the registry names it (schemaType).
type Format string

// The formats eventfx encodes and decodes.
const (
	FormatAvro     Format = "AVRO"
	FormatJSON     Format = "JSON"
	FormatProtobuf Format = "PROTOBUF"
)

func (f Format) srType() sr.SchemaType {
	switch f {
	case FormatJSON:
		return sr.TypeJSON
	case FormatProtobuf:
		return sr.TypeProtobuf
	}
	return sr.TypeAvro
}

func formatOf(t sr.SchemaType) Format {
	switch t {
	case sr.TypeAvro:
		return FormatAvro
	case sr.TypeJSON:
		return FormatJSON
	case sr.TypeProtobuf:
		return FormatProtobuf
	}
	return Format(t.String())
}

// requestTimeout bounds one call to the registry.
const requestTimeout = 10 * time.Second

// Registry is a client of a Confluent Schema Registry with the caches the
// codecs need: schemas by ID (a registered schema never changes) and the
// ID of each schema under each subject. It is safe for concurrent use.
type Registry struct {
	cl        *sr.Client
	url       string
	strategy  string
	useLatest bool
	release   func()

	mu       sync.Mutex
	byID     map[int]*written // schemas by ID
	subjects map[subjectKey]*written
}

// subjectKey names the schema an encoder uses under a subject: its own
// (text) or, with use_latest, the subject's latest.
type subjectKey struct{ subject, text string }

// written is a schema as the registry holds it, compiled.
type written struct {
	id     int
	format Format
	text   string
	avro   *avro.Schema
	json   *jsonSchema
	proto  *protoFile
}

// New returns a client of cfg.SchemaRegistry.URL or, when that is empty
// and kafka.brokers is [embedded], of the process's in-process registry
// (started with the first client, stopped with the last). It does no I/O
// beyond starting that registry; Close releases it.
func New(cfg config.Config) (*Registry, error) {
	cfg = cfg.WithDefaults()
	s := cfg.SchemaRegistry
	release := func() {}
	url := s.URL
	if url == "" {
		if len(cfg.Kafka.Brokers) != 1 || cfg.Kafka.Brokers[0] != config.Embedded {
			return nil, errors.New("schema_registry.url is required unless kafka.brokers is [embedded]")
		}
		r, rel, err := registry.Acquire()
		if err != nil {
			return nil, fmt.Errorf("in-process schema registry: %w", err)
		}
		url, release = r.URL(), rel
	}
	httpClient := &http.Client{Timeout: requestTimeout}
	if s.TLS != (config.SchemaRegistryTLS{}) {
		tc, err := s.TLS.ClientConfig()
		if err != nil {
			release()
			return nil, err
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		httpClient.Transport = t
	}
	opts := []sr.ClientOpt{sr.URLs(url), sr.UserAgent("eventfx"), sr.HTTPClient(httpClient)}
	switch {
	case s.Username != "":
		opts = append(opts, sr.BasicAuth(s.Username, s.Password))
	case s.BearerToken != "":
		opts = append(opts, sr.BearerToken(s.BearerToken))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		release()
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	return &Registry{
		cl: cl, url: displayURL(url), strategy: s.SubjectStrategy, useLatest: s.UseLatest,
		release: sync.OnceFunc(release),
		byID:    map[int]*written{}, subjects: map[subjectKey]*written{},
	}, nil
}

// Close releases the in-process registry, if the Registry uses it.
func (r *Registry) Close() { r.release() }

// URL is the registry's base URL (without user info).
func (r *Registry) URL() string { return r.url }

// Client is the underlying franz-go client, for the registry's other
// endpoints (compatibility levels, deletions).
func (r *Registry) Client() *sr.Client { return r.cl }

// Ping checks that the registry answers; it is /readyz's check.
func (r *Registry) Ping(ctx context.Context) error {
	// GET /config: the global compatibility level, a small answer.
	for _, res := range r.cl.Compatibility(ctx) {
		if res.Err != nil {
			return r.unavailable("ping", res.Err)
		}
	}
	return nil
}

// subject is the subject of a value published to topic whose record
// (Avro record, JSON Schema title) is named name, by the configured
// strategy.
func (r *Registry) subject(topic, name string) (string, error) {
	switch r.strategy {
	case config.SubjectRecord, config.SubjectTopicRecord:
		if name == "" {
			return "", fmt.Errorf("subject strategy %s needs a named record (an Avro record, a JSON Schema with a title)", r.strategy)
		}
		if r.strategy == config.SubjectRecord {
			return name, nil
		}
		return topic + "-" + name, nil
	}
	if topic == "" {
		return "", errors.New("subject strategy topic needs the topic: publish with app.Publisher.PublishEvent or an emitting handler")
	}
	return topic + "-value", nil
}

// schemaByID returns the schema registered with id, compiled.
func (r *Registry) schemaByID(id int) (*written, error) {
	r.mu.Lock()
	w, ok := r.byID[id]
	r.mu.Unlock()
	if ok {
		return w, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	s, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("schema ID %d is unknown to the registry at %s", id, r.url)
		}
		return nil, r.unavailable(fmt.Sprintf("schema ID %d", id), err)
	}
	w, err = compile(id, formatOf(s.Type), s.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema ID %d%s: %w", id, r.subjectsOf(id), err)
	}
	r.mu.Lock()
	r.byID[id] = w
	r.mu.Unlock()
	return w, nil
}

// forSubject returns the schema an encoder of text writes under subject:
// text, registered (once) under subject, or with use_latest the subject's
// latest version.
func (r *Registry) forSubject(subject string, format Format, text string) (*written, error) {
	key := subjectKey{subject, text}
	r.mu.Lock()
	w, ok := r.subjects[key]
	r.mu.Unlock()
	if ok {
		return w, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var ss sr.SubjectSchema
	var err error
	if r.useLatest {
		ss, err = r.cl.SchemaByVersion(ctx, subject, -1)
	} else {
		ss, err = r.cl.CreateSchema(ctx, subject, sr.Schema{Schema: text, Type: format.srType()})
	}
	if err != nil {
		what := "register the schema under subject " + subject
		if r.useLatest {
			what = "latest schema of subject " + subject
		}
		if re, ok := errors.AsType[*sr.ResponseError](err); ok && rejected(err) {
			return nil, fmt.Errorf("%s: the registry at %s answered %d: %w", what, r.url, re.StatusCode, err)
		}
		return nil, r.unavailable(what, err)
	}
	if r.useLatest {
		w, err = compile(ss.ID, formatOf(ss.Type), ss.Schema.Schema)
		if err != nil {
			return nil, fmt.Errorf("latest schema of subject %s (ID %d): %w", subject, ss.ID, err)
		}
		if w.format != format {
			return nil, fmt.Errorf("latest schema of subject %s (ID %d) is %s, not %s", subject, ss.ID, w.format, format)
		}
	} else {
		w, err = compile(ss.ID, format, text)
		if err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.subjects[key] = w
	r.byID[w.id] = w
	r.mu.Unlock()
	return w, nil
}

// subjectsOf is " (subject a, b)" for the subjects of id, or "" when the
// registry does not say: the part of an error that names them.
func (r *Registry) subjectsOf(id int) string {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	subjects, err := r.cl.SubjectsByID(ctx, id)
	if err != nil || len(subjects) == 0 {
		return ""
	}
	slices.Sort(subjects)
	return " (subject " + strings.Join(subjects, ", ") + ")"
}

// unavailable wraps an error of the registry that a retry may cure.
func (r *Registry) unavailable(what string, err error) error {
	return fmt.Errorf("%s: schema registry at %s: %w: %w", what, r.url, handlers.ErrCodecUnavailable, err)
}

// notFound reports a 404 of the registry.
func notFound(err error) bool {
	re, ok := errors.AsType[*sr.ResponseError](err)
	return ok && re.StatusCode == http.StatusNotFound
}

// rejected reports an answer of the registry that a retry cannot change:
// a 4xx other than 408 and 429 (an invalid or incompatible schema, an
// unknown subject).
func rejected(err error) bool {
	re, ok := errors.AsType[*sr.ResponseError](err)
	return ok && re.StatusCode/100 == 4 && re.StatusCode != http.StatusRequestTimeout && re.StatusCode != http.StatusTooManyRequests
}

// displayURL is u without user info.
func displayURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.LastIndex(u[i+3:], "@"); j >= 0 {
			if k := strings.Index(u[i+3:], "/"); k < 0 || j < k {
				return u[:i+3] + u[i+3+j+1:]
			}
		}
	}
	return u
}
