package poison_test

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

// FuzzParsePoisonHeaders parses records with arbitrary headers (lines of
// "key=value" in the input), key and value: Parse must never panic, and a
// replay record, when there is one, must carry no poison header and exactly
// one eventfx_replayed header, one more than the record's count.
func FuzzParsePoisonHeaders(f *testing.F) {
	f.Add([]byte("_watermill_message_uuid=m\ntopic_poisoned=orders\neventfx_attempts=3\neventfx_poisoned_at=2025-01-01T00:00:00Z"), []byte("k"), []byte("v"))
	f.Add([]byte("topic_poisoned=orders\neventfx_original_partition=1\neventfx_original_offset=2\neventfx_replayed=7"), []byte(nil), []byte(""))
	f.Add([]byte("eventfx_attempts=-3\neventfx_original_partition=99999999999\neventfx_poisoned_at=\xff"), []byte{}, []byte{0})
	f.Add([]byte("topic_poisoned=p\neventfx_replayed=2147483647"), []byte("k"), []byte("v"))
	f.Add([]byte("=\n==\n\n_watermill_message_uuid"), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, headers, key, value []byte) {
		rec := &kgo.Record{Topic: "p", Partition: 1, Offset: 2, Key: key, Value: value}
		for l := range bytes.SplitSeq(headers, []byte("\n")) {
			k, v, _ := bytes.Cut(l, []byte("="))
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: string(k), Value: v})
		}
		p := poison.Parse(rec)
		out, err := p.ReplayRecord()
		if err != nil {
			return
		}
		replayed := 0
		for _, h := range out.Headers {
			if slices.Contains(meta.PoisonHeaders, h.Key) {
				t.Fatalf("poison header %q kept in %v", h.Key, out.Headers)
			}
			if h.Key == meta.Replayed {
				replayed++
				if string(h.Value) != strconv.Itoa(p.Replayed+1) {
					t.Fatalf("eventfx_replayed = %q, want %d", h.Value, p.Replayed+1)
				}
			}
		}
		if replayed != 1 {
			t.Fatalf("%d eventfx_replayed headers in %v", replayed, out.Headers)
		}
		if out.Topic != p.Topic || !bytes.Equal(out.Value, value) {
			t.Fatalf("replay goes to %q with %q; want %q with %q", out.Topic, out.Value, p.Topic, value)
		}
	})
}

// FuzzFingerprint: Fingerprint never panics, returns valid UTF-8 on one
// line, is its own fingerprint, and does not depend on the digits of the
// reason (other order IDs, other counts, other durations: the same class).
// The digit 0 is kept, so that a 0x prefix stays one.
func FuzzFingerprint(f *testing.F) {
	for _, s := range []string{
		"order 1234 failed: timeout after 30s",
		`webhook http://127.0.0.1:9000/hook answered 500 Internal Server Error: {"order":"o-1234"}`,
		"message 6ba7b810-9dad-11d1-80b4-00c04fd430c8 addr=0xc000123456 trace 4bf92f3577b34da6a3ce929d0e0e4736",
		"can't find 'x', don't retry; `a` \"b\\\"c\" 'd\\'",
		"cus_NffrFeUfNV2Hib jane@example.com 1h2m3.5s 10µs 5min 2nd",
		"'\\'\\'\\'\"\\\"", "\xff\xfe 1\n2\t3", "0x 0X1g 12345678abcdefgh v1.2.3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		fp := poison.Fingerprint(reason)
		if !utf8.ValidString(fp) || strings.ContainsAny(fp, "\r\n") {
			t.Fatalf("Fingerprint(%q) = %q: not valid UTF-8 on one line", reason, fp)
		}
		if again := poison.Fingerprint(fp); again != fp {
			t.Fatalf("Fingerprint(%q) = %q, but Fingerprint(%q) = %q", reason, fp, fp, again)
		}
		b := []byte(reason) // bytes: digits are ASCII, and invalid UTF-8 stays as it is
		for i, c := range b {
			if '1' <= c && c <= '9' {
				b[i] = '1' + (c-'1'+4)%9
			}
		}
		shifted := string(b)
		if other := poison.Fingerprint(shifted); other != fp {
			t.Fatalf("other digits, other class:\n%q → %q\n%q → %q", reason, fp, shifted, other)
		}
		if id := poison.GroupID("t", "h", fp); poison.ValidGroupID(id) != nil {
			t.Fatalf("GroupID %q is not valid", id)
		}
	})
}
