package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
)

// TestAppendAcceptedIsWhatEncodingJSONWrites compares the 202 body with
// json.Encoder's, for IDs a caller may send (printable, escaped,
// non-ASCII, invalid UTF-8, U+2028) and the fuzzer's.
func TestAppendAcceptedIsWhatEncodingJSONWrites(t *testing.T) {
	for _, s := range []string{
		"", "3f1c2d9e-5b8a-4f6e-9a7b-1c2d3e4f5a6b", "orders.v1_x-y", `say "hi"`, `back\slash`,
		"<script>&amp;</script>", "héllo wörld", "日本語", "\u2028\u2029", "\xff\xfe", "a\x7fb", "tab\there\n", "~ !#$%'()*+,-./:;=?@[]^_`{|}",
	} {
		checkAccepted(t, Accepted{ID: s, Topic: "orders", CorrelationID: s + "c"})
	}
}

func FuzzAppendAccepted(f *testing.F) {
	f.Add("id", "topic", "cid")
	f.Add("<", "\xff", "\u2028")
	f.Fuzz(func(t *testing.T, id, topic, cid string) {
		checkAccepted(t, Accepted{ID: id, Topic: topic, CorrelationID: cid})
	})
}

func checkAccepted(t *testing.T, a Accepted) {
	t.Helper()
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(a); err != nil {
		t.Fatal(err)
	}
	if got := appendAccepted(nil, &a); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("%+q:\n got %s\nwant %s", a, got, want.Bytes())
	}
}

func TestHeaderCarrierGetsWhatHeaderCarrierGets(t *testing.T) {
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("Tracestate", "v=1")
	h.Set("Other", "x")
	for _, key := range []string{"traceparent", "tracestate", "Traceparent", "other", "missing"} {
		if got, want := (headerCarrier{propagation.HeaderCarrier(h)}).Get(key), propagation.HeaderCarrier(h).Get(key); got != want {
			t.Errorf("Get(%q) = %q, want %q", key, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = (headerCarrier{propagation.HeaderCarrier(h)}).Get("traceparent") }); n != 0 {
		t.Errorf("Get allocates %v times", n)
	}
}

func TestFirstIsHeaderGet(t *testing.T) {
	h := http.Header{}
	h.Add("Authorization", "Bearer a")
	h.Add("Authorization", "Bearer b")
	h.Set(HeaderID, "id")
	for _, name := range []string{"Authorization", "X-Event-Id", "Missing"} {
		if got, want := first(h, name), h.Get(name); got != want {
			t.Errorf("first(%q) = %q, want %q", name, got, want)
		}
	}
	h.Set(HeaderCorrelationID, "c")
	for i, key := range headerKeys {
		if c := http.CanonicalHeaderKey(key); c != key {
			t.Errorf("header %q is not in canonical form %q: headerValue would miss it", key, c)
		}
		if got, want := first(h, key), h.Get(headerNames[i]); got != want {
			t.Errorf("first(%q) = %q, want %q", key, got, want)
		}
	}
}
