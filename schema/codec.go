package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/twmb/avro"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Content types of the payloads a Codec writes (the content_type header).
const (
	ContentTypeAvro     = "application/vnd.confluent.avro"
	ContentTypeJSON     = "application/vnd.confluent.jsonschema+json"
	ContentTypeProtobuf = "application/vnd.confluent.protobuf"
)

// Type binds a Go type to the schema its values are written with and read
// into. Make one with Avro, JSONSchema or Protobuf.
type Type struct {
	goType  reflect.Type
	format  Format
	text    string
	message protoreflect.MessageDescriptor // Protobuf
}

// Avro binds T to an Avro schema (the text of an .avsc). T's fields map to
// the record's fields by their `avro:"name"` tags (else their Go names),
// as github.com/twmb/avro maps them.
func Avro[T any](schema string) Type {
	return Type{goType: reflect.TypeFor[T](), format: FormatAvro, text: schema}
}

// JSONSchema binds T to a JSON Schema: values are encoding/json's, checked
// against the schema when written and when read.
func JSONSchema[T any](schema string) Type {
	return Type{goType: reflect.TypeFor[T](), format: FormatJSON, text: schema}
}

// Protobuf binds a generated Protobuf message type (a pointer, as
// protoc-gen-go makes them) to its own schema: the .proto file it was
// generated from, registered as Confluent's Python serializer registers
// one (a base64 FileDescriptorProto). Its file may import only the
// well-known types (google/protobuf/…): schema references are not
// supported.
func Protobuf[T proto.Message]() Type {
	var zero T
	return Type{goType: reflect.TypeFor[T](), format: FormatProtobuf, message: zero.ProtoReflect().Descriptor()}
}

// Codec is a handlers.Codec (and handlers.TopicMarshaler) for values in the
// Schema Registry wire format, for the Go types it was made with. It
// writes a value with its type's schema, registered under the subject of
// the topic it is published to (schema_registry.subject_strategy), or the
// subject's latest schema with schema_registry.use_latest. It reads a
// value written with any schema the registry holds that its type's schema
// can read: for Avro, by schema resolution (fields added with a default,
// removed, promoted). A Codec is safe for concurrent use.
type Codec struct {
	reg    *Registry
	format Format
	types  map[reflect.Type]*bound
}

// bound is one Type of a Codec, compiled.
type bound struct {
	Type
	own  *written // the reader's schema (ID 0: not registered by it)
	name string   // the record's full name

	// resolved holds, for Avro, the writers' schemas (by ID) resolved to
	// own: read without a lock, replaced by a copy under mu.
	resolved atomic.Pointer[map[int]*avro.Schema]

	mu      sync.Mutex
	writers map[string]writer // per topic: the schema values are written with
}

// writer is the schema a bound type's values are written with to a topic.
type writer struct {
	w       *written
	subject string
}

// NewCodec returns a codec of types, all of one format (Avro or JSON
// Schema), on reg. It fails if a schema does not parse, a type is given
// twice, or the formats differ.
func NewCodec(reg *Registry, types ...Type) (*Codec, error) {
	if len(types) == 0 {
		return nil, errors.New("schema codec: no types")
	}
	c := &Codec{reg: reg, format: types[0].format, types: make(map[reflect.Type]*bound, len(types))}
	for _, t := range types {
		if t.format != c.format {
			return nil, fmt.Errorf("schema codec: %v is %s and %v is %s: one codec has one format", types[0].goType, c.format, t.goType, t.format)
		}
		if _, dup := c.types[t.goType]; dup {
			return nil, fmt.Errorf("schema codec: %v given twice", t.goType)
		}
		if t.format == FormatProtobuf {
			text, err := protoText(t.message)
			if err != nil {
				return nil, fmt.Errorf("schema codec: %v: %w", t.goType, err)
			}
			t.text = text
		}
		own, err := compile(0, t.format, t.text)
		if err != nil {
			return nil, fmt.Errorf("schema codec: %v: %w", t.goType, err)
		}
		name := own.recordName()
		if t.message != nil {
			name = string(t.message.FullName())
		}
		b := &bound{Type: t, own: own, name: name, writers: map[string]writer{}}
		b.resolved.Store(&map[int]*avro.Schema{})
		c.types[t.goType] = b
	}
	return c, nil
}

// ContentType is the media type of the codec's payloads.
func (c *Codec) ContentType() string {
	switch c.format {
	case FormatJSON:
		return ContentTypeJSON
	case FormatProtobuf:
		return ContentTypeProtobuf
	}
	return ContentTypeAvro
}

// Marshal encodes v for the record subject strategies, which need no
// topic; with the topic strategy it fails (use MarshalTopic).
func (c *Codec) Marshal(v any) ([]byte, error) { return c.MarshalTopic("", v) }

// MarshalTopic encodes v for a value published to topic: framed with the
// ID of its schema under the topic's subject.
func (c *Codec) MarshalTopic(topic string, v any) ([]byte, error) {
	b, err := c.bound(reflect.TypeOf(v))
	if err != nil {
		return nil, err
	}
	wr, err := b.writer(c.reg, topic)
	if err != nil {
		return nil, err
	}
	w, subject := wr.w, wr.subject
	out := appendHeader(make([]byte, 0, 64), w.id)
	switch b.format {
	case FormatAvro:
		out, err = w.avro.AppendEncode(out, v)
		if err != nil {
			return nil, fmt.Errorf("encode with schema ID %d (subject %s): %w", w.id, subject, err)
		}
	case FormatJSON:
		doc, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if err := w.json.validate(doc); err != nil {
			return nil, fmt.Errorf("schema ID %d (subject %s): %w", w.id, subject, err)
		}
		out = append(out, doc...)
	case FormatProtobuf:
		m, ok := v.(proto.Message)
		if !ok {
			return nil, fmt.Errorf("schema codec: %T is not a proto.Message", v)
		}
		out, err = proto.MarshalOptions{}.MarshalAppend(appendIndexes(out, indexesOf(b.message)), m)
		if err != nil {
			return nil, fmt.Errorf("encode with schema ID %d (subject %s): %w", w.id, subject, err)
		}
	}
	return out, nil
}

// Unmarshal decodes a framed value into v, a pointer to one of the
// codec's types.
func (c *Codec) Unmarshal(data []byte, v any) error {
	// An Avro value whose writer's schema was resolved before is decoded
	// here; everything else, errors included, in unmarshal. Its frame
	// stays small: a handler's stack holds it while the value decodes.
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer {
		if b, ok := c.types[t.Elem()]; ok {
			if id, value, err := ParseFrame(data); err == nil {
				if rs, ok := (*b.resolved.Load())[id]; ok {
					return c.decodeAvro(rs, id, value, v)
				}
			}
		}
	}
	return c.unmarshal(data, v)
}

// unmarshal is Unmarshal's path for the values it does not decode itself.
func (c *Codec) unmarshal(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("schema codec: decode into %T, want a pointer", v)
	}
	b, err := c.bound(t.Elem())
	if err != nil && c.format == FormatProtobuf {
		b, err = c.bound(t) // a message itself, not a pointer to one
	}
	if err != nil {
		return err
	}
	id, value, err := ParseFrame(data)
	if err != nil {
		return err
	}
	w, err := c.reg.schemaByID(id)
	if err != nil {
		return err
	}
	if w.format != b.format {
		return fmt.Errorf("schema ID %d%s is %s, not %s", id, c.reg.subjectsOf(id), w.format, b.format)
	}
	switch b.format {
	case FormatAvro:
		rs, err := b.resolve(w)
		if err != nil {
			return fmt.Errorf("schema ID %d%s: %v's schema cannot read it: %w", id, c.reg.subjectsOf(id), b.goType, err)
		}
		return c.decodeAvro(rs, id, value, v)
	case FormatJSON:
		if err := w.json.validate(value); err != nil {
			return fmt.Errorf("schema ID %d%s: %w", id, c.reg.subjectsOf(id), err)
		}
		if err := json.Unmarshal(value, v); err != nil {
			return fmt.Errorf("schema ID %d%s: %w", id, c.reg.subjectsOf(id), err)
		}
	case FormatProtobuf:
		if err := unmarshalProto(w, b, value, v); err != nil {
			return fmt.Errorf("schema ID %d%s: %w", id, c.reg.subjectsOf(id), err)
		}
	}
	return nil
}

// decodeAvro decodes an Avro value (after the schema ID) written with
// schema ID id into v, with rs, the writer's schema resolved to v's.
func (c *Codec) decodeAvro(rs *avro.Schema, id int, value []byte, v any) error {
	rest, err := rs.Decode(value, v)
	if err == nil && len(rest) == 0 {
		return nil
	}
	return c.avroError(id, rest, err)
}

// avroError is the error of an Avro decode with schema ID id that failed
// with err or left rest unread.
func (c *Codec) avroError(id int, rest []byte, err error) error {
	if err == nil {
		err = fmt.Errorf("%d bytes after the value", len(rest))
	}
	return fmt.Errorf("schema ID %d%s: %w", id, c.reg.subjectsOf(id), err)
}

// unmarshalProto decodes a Protobuf value (after the schema ID) into v, a
// message or a pointer to b's message pointer (allocated when nil). The writer's
// message at the value's indexes must be b's.
func unmarshalProto(w *written, b *bound, value []byte, v any) error {
	indexes, body, err := parseIndexes(value)
	if err != nil {
		return err
	}
	md, err := messageAt(w.proto.file, indexes)
	if err != nil {
		return err
	}
	if md.FullName() != b.message.FullName() {
		return fmt.Errorf("the value is a %s, not a %s", md.FullName(), b.message.FullName())
	}
	if m, ok := v.(proto.Message); ok {
		return proto.Unmarshal(body, m)
	}
	rv := reflect.ValueOf(v).Elem()
	if rv.IsNil() {
		rv.Set(reflect.New(rv.Type().Elem()))
	}
	return proto.Unmarshal(body, rv.Interface().(proto.Message))
}

// bound returns the codec's binding of t (or of *t's element).
func (c *Codec) bound(t reflect.Type) (*bound, error) {
	if b, ok := c.types[t]; ok {
		return b, nil
	}
	if t != nil && t.Kind() == reflect.Pointer {
		if b, ok := c.types[t.Elem()]; ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("schema codec: no schema for %v (give it to schema.NewCodec)", t)
}

// writer returns the schema b's values are written with to topic, asking
// the registry once per topic.
func (b *bound) writer(reg *Registry, topic string) (writer, error) {
	b.mu.Lock()
	wr, ok := b.writers[topic]
	b.mu.Unlock()
	if ok {
		return wr, nil
	}
	subject, err := reg.subject(topic, b.name)
	if err != nil {
		return writer{}, err
	}
	w, err := reg.forSubject(subject, b.format, b.text)
	if err != nil {
		return writer{}, err
	}
	wr = writer{w: w, subject: subject}
	b.mu.Lock()
	b.writers[topic] = wr
	b.mu.Unlock()
	return wr, nil
}

// resolve returns the schema that reads data written with w into b's type.
func (b *bound) resolve(w *written) (*avro.Schema, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.resolved.Load()
	if rs, ok := old[w.id]; ok {
		return rs, nil
	}
	rs, err := avro.Resolve(w.avro, b.own.avro)
	if err != nil {
		return nil, err
	}
	m := make(map[int]*avro.Schema, len(old)+1)
	maps.Copy(m, old)
	m[w.id] = rs
	b.resolved.Store(&m)
	return rs, nil
}
