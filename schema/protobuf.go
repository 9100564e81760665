package schema

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Protobuf values are framed with the message's indexes after the schema
// ID: the path to the message type in its .proto file (its position among
// the file's top-level messages, then among the nested ones), written as
// Confluent's Java serializer writes it, zigzag varints: the count, then
// each index; the first message of a file, [0], as the single byte 0.

// appendIndexes appends the framing of a message's indexes.
func appendIndexes(b []byte, indexes []int) []byte {
	if len(indexes) == 1 && indexes[0] == 0 {
		return append(b, 0)
	}
	b = binary.AppendVarint(b, int64(len(indexes)))
	for _, i := range indexes {
		b = binary.AppendVarint(b, int64(i))
	}
	return b
}

// maxIndexes bounds the index list of a value: deeper nesting is not a
// real schema.
const maxIndexes = 32

// parseIndexes reads the message indexes at the start of b.
func parseIndexes(b []byte) (indexes []int, rest []byte, err error) {
	r := bytes.NewReader(b)
	n, err := binary.ReadVarint(r)
	if err != nil {
		return nil, nil, errors.New("truncated Protobuf message indexes")
	}
	if n == 0 {
		return []int{0}, b[len(b)-r.Len():], nil
	}
	if n < 0 || n > maxIndexes {
		return nil, nil, fmt.Errorf("bad Protobuf message index count %d", n)
	}
	indexes = make([]int, n)
	for i := range indexes {
		v, err := binary.ReadVarint(r)
		if err != nil {
			return nil, nil, errors.New("truncated Protobuf message indexes")
		}
		if v < 0 {
			return nil, nil, fmt.Errorf("bad Protobuf message index %d", v)
		}
		indexes[i] = int(v)
	}
	return indexes, b[len(b)-r.Len():], nil
}

// messageAt returns the message of file at indexes.
func messageAt(file protoreflect.FileDescriptor, indexes []int) (protoreflect.MessageDescriptor, error) {
	msgs := file.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range indexes {
		if i >= msgs.Len() {
			return nil, fmt.Errorf("message index %v is not in the schema (file %s)", indexes, file.Path())
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	if md == nil {
		return nil, errors.New("no message index")
	}
	return md, nil
}

// indexesOf is the path of md in its file.
func indexesOf(md protoreflect.MessageDescriptor) []int {
	var path []int
	for d := protoreflect.Descriptor(md); ; {
		path = append([]int{d.Index()}, path...)
		parent, ok := d.Parent().(protoreflect.MessageDescriptor)
		if !ok {
			return path
		}
		d = parent
	}
}

// protoFile is a compiled Protobuf schema.
type protoFile struct {
	file protoreflect.FileDescriptor
}

// schemaFileName is the name a schema text is compiled under.
const schemaFileName = "schema.proto"

// compileProto compiles a Protobuf schema as the registry holds it: .proto
// source, or a base64 FileDescriptorProto (what Confluent's Python
// serializer registers). Imports of the well-known types
// (google/protobuf/…) are resolved; other imports (schema references) are
// not supported.
func compileProto(text string) (*protoFile, error) {
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text)); err == nil {
		var fdp descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(b, &fdp); err == nil && fdp.GetName() != "" {
			f, err := protodesc.NewFile(&fdp, protoregistry.GlobalFiles)
			if err != nil {
				return nil, err
			}
			return &protoFile{file: f}, nil
		}
	}
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: func(path string) (io.ReadCloser, error) {
			if path != schemaFileName {
				return nil, fmt.Errorf("import %q: schema references are not supported (only google/protobuf/… imports)", path)
			}
			return io.NopCloser(strings.NewReader(text)), nil
		},
	})}
	files, err := c.Compile(context.Background(), schemaFileName)
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	return &protoFile{file: files[0]}, nil
}

// protoText is the schema a Go message type registers: its file's
// FileDescriptorProto, base64 (Confluent's registry accepts it and keeps
// it as .proto source), after checking it imports only well-known types.
func protoText(md protoreflect.MessageDescriptor) (string, error) {
	imports := md.ParentFile().Imports()
	for i := range imports.Len() {
		if p := imports.Get(i).Path(); !strings.HasPrefix(p, "google/protobuf/") {
			return "", fmt.Errorf("%s imports %s: schema references are not supported (only google/protobuf/… imports)", md.ParentFile().Path(), p)
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(protodesc.ToFileDescriptorProto(md.ParentFile()))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// protoJSON is how decoded Protobuf values are printed: the .proto field
// names, zero values included.
var protoJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// decodeProtoJSON decodes a Protobuf value (after the schema ID) with the
// writer's file into JSON.
func decodeProtoJSON(w *written, value []byte) ([]byte, error) {
	indexes, body, err := parseIndexes(value)
	if err != nil {
		return nil, err
	}
	md, err := messageAt(w.proto.file, indexes)
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%s: %w", md.FullName(), err)
	}
	b, err := protoJSON.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; print it one way.
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
