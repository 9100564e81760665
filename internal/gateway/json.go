package gateway

import "encoding/json"

// appendAccepted appends a 202's body to b: a as encoding/json's Encoder
// writes it (its fields in order, HTML characters escaped, a newline at
// the end), without the reflection and the encoder's allocations.
func appendAccepted(b []byte, a *Accepted) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"topic":`...)
	b = appendString(b, a.Topic)
	b = append(b, `,"correlation_id":`...)
	b = appendString(b, a.CorrelationID)
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string, as encoding/json encodes it. A
// string of printable ASCII without a character that encoding/json
// escapes (", \, and the HTML characters <, > and &) is itself between
// quotes, which every generated ID and legal topic name is; any other
// goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
