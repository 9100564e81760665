package outbox

import (
	"encoding/json"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeHeaders agrees with encoding/json on every input: what one
// accepts the other does, with the same result.
func TestDecodeHeadersAgreesWithEncodingJSON(t *testing.T) {
	written, err := json.Marshal(map[string]string{
		"content_type": "application/json", "correlation_id": "c-1", "traceparent": "00-4bf9-00f0-01",
		"quote": `say "hi"`, "newline": "a\nb", "html": "<b>&</b>", "unicode": "zürich ✓", "empty": "",
	})
	require.NoError(t, err)
	for _, in := range []string{
		string(written),
		`{}`,
		`{"a":"1"}`,
		`{"a":"1","b":"2"}`,
		`{"a":"1","a":"2"}`,       // duplicate: the last wins
		`{ "a" : "1" }`,           // whitespace
		`{"a":"\u00e9"}`,          // an escape
		`{"a":1}`,                 // not a string
		`{"a":null}`,              // null
		`{"a":"1",}`,              // trailing comma
		`{"a":"1"}x`,              // trailing bytes
		`{"a":"1"`,                // truncated
		`{"a" "1"}`,               // no colon
		`{"a":"x` + "\x01" + `"}`, // a control character
		"{\"a\":\"\xff\"}",        // invalid UTF-8
		`null`,
		`[]`,
		``,
	} {
		var want message.Metadata
		wantErr := json.Unmarshal([]byte(in), &want)
		got, err := decodeHeaders([]byte(in))
		if wantErr != nil {
			assert.Error(t, err, "%q: encoding/json refuses it", in)
			continue
		}
		require.NoError(t, err, "%q", in)
		if want == nil {
			want = message.Metadata{}
		}
		if got == nil {
			got = message.Metadata{}
		}
		assert.Equal(t, want, got, "%q", in)
	}
}

func FuzzDecodeHeaders(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"1","b":"2"}`, `{"a":"\n"}`, `{"a":"1","a":"2"}`, `{"a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want message.Metadata
		wantErr := json.Unmarshal(in, &want)
		got, err := decodeHeaders(in)
		if (wantErr != nil) != (err != nil) {
			t.Fatalf("%q: encoding/json says %v, decodeHeaders %v", in, wantErr, err)
		}
		if err != nil {
			return
		}
		if len(want) != len(got) {
			t.Fatalf("%q: encoding/json %v, decodeHeaders %v", in, want, got)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%q: %q: encoding/json %q, decodeHeaders %q", in, k, v, got[k])
			}
		}
	})
}

func BenchmarkDecodeHeaders(b *testing.B) {
	in := []byte(`{"_watermill_message_uuid":"0192f0c4-6b1f-7b6e-8f7e-3c1d2a4b5c6d","content_type":"application/json","correlation_id":"5f0e8a2c-1d3b-4c5a-9e7f-0a1b2c3d4e5f"}`)
	b.Run("decodeHeaders", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeHeaders(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var md message.Metadata
			if err := json.Unmarshal(in, &md); err != nil {
				b.Fatal(err)
			}
		}
	})
}
