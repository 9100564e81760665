package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/avro"
)

// jsonSchema is a compiled JSON Schema and the name of its record (its
// title), for the record subject strategies.
type jsonSchema struct {
	s     *jsonschema.Schema
	title string
}

// compile parses a schema's text. Schema references are not followed.
func compile(id int, f Format, text string) (*written, error) {
	w := &written{id: id, format: f, text: text}
	var err error
	switch f {
	case FormatAvro:
		w.avro, err = avro.Parse(text)
	case FormatJSON:
		w.json, err = compileJSON(text)
	case FormatProtobuf:
		w.proto, err = compileProto(text)
	default:
		err = fmt.Errorf("%s schemas are not supported (Avro, JSON Schema and Protobuf are)", f)
	}
	if err != nil {
		return nil, fmt.Errorf("%s schema: %w", f, err)
	}
	return w, nil
}

func compileJSON(text string) (*jsonSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	const loc = "eventfx:schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, err
	}
	js := &jsonSchema{s: s}
	if m, ok := doc.(map[string]any); ok {
		js.title, _ = m["title"].(string)
	}
	return js, nil
}

// validate checks a JSON document against the schema.
func (j *jsonSchema) validate(doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := j.s.Validate(v); err != nil {
		return fmt.Errorf("does not match its JSON schema: %s", oneLine(err.Error()))
	}
	return nil
}

// recordName is the full name of the schema's record: an Avro named
// type's "<namespace>.<name>", a JSON Schema's title, the first message
// of a .proto file; "" when unnamed.
func (w *written) recordName() string {
	switch {
	case w.avro != nil:
		var named struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		}
		if json.Unmarshal([]byte(w.text), &named) != nil || named.Name == "" {
			return ""
		}
		if named.Namespace != "" && !strings.Contains(named.Name, ".") {
			return named.Namespace + "." + named.Name
		}
		return named.Name
	case w.json != nil:
		return w.json.title
	case w.proto != nil && w.proto.file.Messages().Len() > 0:
		return string(w.proto.file.Messages().Get(0).FullName())
	}
	return ""
}

// oneLine collapses s's whitespace, for errors that become poison reasons.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
