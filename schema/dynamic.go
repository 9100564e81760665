package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Decoded is a framed value decoded without a Go type: for tools
// (`eventfx tail --decode`) and the relay's `decode: json` routes.
type Decoded struct {
	// ID is the schema's registry ID, from the framing.
	ID int
	// Format is the schema's language.
	Format Format
	// JSON is the value as JSON: Avro's JSON encoding of it (a union's
	// value as itself, bytes as a string), the JSON Schema value as
	// written, or Protobuf's JSON mapping (with the .proto field names and
	// zero values).
	JSON json.RawMessage
}

// DecodeJSON decodes a framed value with the schema its ID names. Its
// errors are those of Codec.Unmarshal: permanent, unless the registry did
// not answer (handlers.ErrCodecUnavailable).
func (r *Registry) DecodeJSON(payload []byte) (Decoded, error) {
	id, value, err := ParseFrame(payload)
	if err != nil {
		return Decoded{}, err
	}
	w, err := r.schemaByID(id)
	if err != nil {
		return Decoded{}, err
	}
	d := Decoded{ID: id, Format: w.format}
	switch w.format {
	case FormatAvro:
		var v any
		rest, err := w.avro.Decode(value, &v)
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("%d bytes after the value", len(rest))
		}
		if err == nil {
			d.JSON, err = w.avro.EncodeJSON(v)
		}
		if err != nil {
			return Decoded{}, fmt.Errorf("schema ID %d%s: %w", id, r.subjectsOf(id), err)
		}
	case FormatProtobuf:
		b, err := decodeProtoJSON(w, value)
		if err != nil {
			return Decoded{}, fmt.Errorf("schema ID %d%s: %w", id, r.subjectsOf(id), err)
		}
		d.JSON = b
	case FormatJSON:
		if err := w.json.validate(value); err != nil {
			return Decoded{}, fmt.Errorf("schema ID %d%s: %w", id, r.subjectsOf(id), err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, value); err != nil {
			return Decoded{}, fmt.Errorf("schema ID %d%s: %w", id, r.subjectsOf(id), err)
		}
		d.JSON = buf.Bytes()
	}
	return d, nil
}

// Encoder writes JSON documents as framed values of one schema: for tools
// (`eventfx publish --value-schema`). A Protobuf schema's values are of
// the first message of its file.
type Encoder struct {
	w       *written
	subject string
	message protoreflect.MessageDescriptor // Protobuf
}

// NewEncoder registers the schema text of format under the subject of
// topic (with use_latest, takes the subject's latest instead) and returns
// an encoder of values with it.
func (r *Registry) NewEncoder(ctx context.Context, topic string, format Format, text string) (*Encoder, error) {
	own, err := compile(0, format, text)
	if err != nil {
		return nil, err
	}
	subject, err := r.subject(topic, own.recordName())
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w, err := r.forSubject(subject, format, text)
	if err != nil {
		return nil, err
	}
	e := &Encoder{w: w, subject: subject}
	if format == FormatProtobuf {
		if w.proto.file.Messages().Len() == 0 {
			return nil, errors.New("the .proto file has no message")
		}
		e.message = w.proto.file.Messages().Get(0)
	}
	return e, nil
}

// ID is the registry ID of the schema the encoder writes with.
func (e *Encoder) ID() int { return e.w.id }

// Subject is the subject the schema is registered under.
func (e *Encoder) Subject() string { return e.subject }

// EncodeJSON encodes one JSON document. A document that does not match
// the schema is an error naming the field.
func (e *Encoder) EncodeJSON(doc []byte) ([]byte, error) {
	out := appendHeader(make([]byte, 0, len(doc)+headerSize), e.w.id)
	switch e.w.format {
	case FormatAvro:
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		if dec.More() {
			return nil, fmt.Errorf("not one JSON document")
		}
		b, err := e.w.avro.AppendEncode(out, v)
		if err != nil {
			return nil, fmt.Errorf("does not match schema ID %d: %s", e.w.id, oneLine(err.Error()))
		}
		return b, nil
	case FormatProtobuf:
		m := dynamicpb.NewMessage(e.message)
		if err := protojson.Unmarshal(doc, m); err != nil {
			return nil, fmt.Errorf("does not match schema ID %d (%s): %s", e.w.id, e.message.FullName(), oneLine(err.Error()))
		}
		b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(appendIndexes(out, indexesOf(e.message)), m)
		if err != nil {
			return nil, err
		}
		return b, nil
	default:
		if err := e.w.json.validate(doc); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, doc); err != nil {
			return nil, err
		}
		return append(out, buf.Bytes()...), nil
	}
}
