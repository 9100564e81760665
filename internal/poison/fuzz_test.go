package poison_test

import (
	"bytes"
	"slices"
	"strconv"
	"testing"

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
