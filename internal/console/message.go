package console

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

// Message is a record as the console shows it.
type Message struct {
	Topic         string    `json:"topic"`
	Partition     int32     `json:"partition"`
	Offset        int64     `json:"offset"`
	Timestamp     time.Time `json:"timestamp"`
	Key           string    `json:"key,omitempty"`
	ID            string    `json:"id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Headers       []Header  `json:"headers"`
	// Payload is the value as text when it is UTF-8 (JSON indented);
	// PayloadBase64 the value when it is not.
	Payload       string `json:"payload"`
	PayloadBase64 string `json:"payload_base64,omitempty"`
	// JSON says whether the payload is JSON.
	JSON bool `json:"json"`
	// SchemaID is the Schema Registry ID of a framed payload the console
	// decoded (Payload is then its JSON); DecodeError why a payload that
	// looked framed did not decode (the payload is then shown as it is).
	SchemaID    int    `json:"schema_id,omitempty"`
	DecodeError string `json:"decode_error,omitempty"`
}

// decoder decodes Schema-Registry-framed payloads (Options.Decode); nil
// decodes nothing.
type decoder func(payload []byte) (schemaID int, value []byte, err error)

// framed reports whether v may be a Schema-Registry-framed value: magic
// byte 0 and a schema ID.
func framed(v []byte) bool { return len(v) >= 5 && v[0] == 0 }

// Header is one record header. Values of headers whose names say they
// hold a secret (authorization, password, secret, token) are masked.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// masked replaces the value of a header that holds a secret.
const masked = "[redacted]"

func secretHeader(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"authorization", "password", "secret", "token", "signature"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// newMessage describes r, its payload decoded by dec when framed.
func newMessage(r *kgo.Record, dec decoder) Message {
	m := Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(), Key: printable(r.Key), Headers: headers(r.Headers)}
	for _, h := range r.Headers {
		switch h.Key {
		case poison.IDHeader:
			m.ID = string(h.Value)
		case meta.CorrelationID:
			m.CorrelationID = string(h.Value)
		}
	}
	if dec != nil && framed(r.Value) {
		id, value, err := dec(r.Value)
		if err == nil {
			m.SchemaID = id
			m.Payload, m.PayloadBase64, m.JSON = payload(value)
			return m
		}
		m.DecodeError = err.Error()
	}
	m.Payload, m.PayloadBase64, m.JSON = payload(r.Value)
	return m
}

func headers(hs []kgo.RecordHeader) []Header {
	out := make([]Header, len(hs))
	for i, h := range hs {
		v := printable(h.Value)
		if secretHeader(h.Key) {
			v = masked
		}
		out[i] = Header{Key: h.Key, Value: v}
	}
	return out
}

// printable is b as text, or base64 when it is not UTF-8.
func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}

// payload is v pretty-printed when JSON, as text when UTF-8, else in
// base64.
func payload(v []byte) (text, b64 string, isJSON bool) {
	if json.Valid(v) && len(bytes.TrimSpace(v)) > 0 {
		var out bytes.Buffer
		if json.Indent(&out, v, "", "  ") == nil {
			return out.String(), "", true
		}
	}
	if utf8.Valid(v) {
		return string(v), "", false
	}
	return "", base64.StdEncoding.EncodeToString(v), false
}
