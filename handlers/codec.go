package handlers

import (
	"encoding/json"
	"errors"
)

// Codec turns typed events into payloads and back.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
	// ContentType is the media type written to the content_type header.
	ContentType() string
}

// TopicMarshaler is implemented by codecs whose payloads depend on the
// topic they are published to: a Schema Registry codec registers or looks
// up its schema under a subject named after the topic. Emitting handlers
// and app.Publisher.PublishEvent call MarshalTopic instead of Marshal when
// the codec has it.
type TopicMarshaler interface {
	MarshalTopic(topic string, v any) ([]byte, error)
}

// ErrCodecUnavailable, in the chain of a codec's error, marks the error
// transient: what the codec needs (a schema registry) did not answer, and
// a later attempt may succeed. Every other decode or encode error is
// permanent.
var ErrCodecUnavailable = errors.New("codec unavailable")

// JSON is the default codec: encoding/json. Unknown fields are ignored, as
// they are by encoding/json, so producers can add fields first.
type JSON struct{}

// Marshal encodes v as JSON.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// ContentType is application/json.
func (JSON) ContentType() string { return "application/json" }
