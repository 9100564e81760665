package handlers

import "encoding/json"

// Codec turns typed events into payloads and back.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
	// ContentType is the media type written to the content_type header.
	ContentType() string
}

// JSON is the default codec: encoding/json. Unknown fields are ignored, as
// they are by encoding/json, so producers can add fields first.
type JSON struct{}

// Marshal encodes v as JSON.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// ContentType is application/json.
func (JSON) ContentType() string { return "application/json" }
