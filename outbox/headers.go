package outbox

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/internal/meta"
)

// decodeHeaders reads a row's headers column, a JSON object of strings,
// as Publish wrote it (encoding/json: compact, no duplicate keys). The
// common case, strings without escapes, is read here without reflection;
// anything else (escapes, whitespace a hand-written row may have, a value
// that is not a string) goes to encoding/json, which decides.
func decodeHeaders(b []byte) (message.Metadata, error) {
	if md, ok := decodeFlat(b); ok {
		return md, nil
	}
	var md message.Metadata
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, err
	}
	return md, nil
}

// decodeFlat decodes {"k":"v",…} of valid UTF-8 with no escapes and no
// whitespace, and reports false for anything else.
func decodeFlat(b []byte) (message.Metadata, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' || !utf8.Valid(b) {
		return nil, false
	}
	// Count the pairs for one allocation: every string of a flat object
	// is opened and closed by a quote, four per pair.
	quotes := 0
	for _, c := range b {
		if c == '"' {
			quotes++
		}
	}
	md := make(message.Metadata, quotes/4)
	i := 1
	if b[i] == '}' {
		return md, i == len(b)-1
	}
	for {
		kb, next, ok := flatString(b, i)
		if !ok || next >= len(b) || b[next] != ':' {
			return nil, false
		}
		vb, next, ok := flatString(b, next+1)
		if !ok || next >= len(b) {
			return nil, false
		}
		k, v := common(kb), common(vb)
		if _, dup := md[k]; dup {
			return nil, false // encoding/json's rule: the last one wins
		}
		md[k] = v
		switch b[next] {
		case ',':
			i = next + 1
		case '}':
			return md, next == len(b)-1
		default:
			return nil, false
		}
	}
}

// flatString reads a JSON string starting at b[i] that holds no escape
// and no control character, and returns its bytes and the index after it.
func flatString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// common returns b as a string, without allocating one for the header
// names and values most rows hold.
func common(b []byte) string {
	switch string(b) { // compiled without a conversion
	case meta.CorrelationID:
		return meta.CorrelationID
	case meta.ContentType:
		return meta.ContentType
	case meta.Traceparent:
		return meta.Traceparent
	case meta.Tracestate:
		return meta.Tracestate
	case meta.Service:
		return meta.Service
	case "application/json":
		return "application/json"
	}
	return string(b)
}
