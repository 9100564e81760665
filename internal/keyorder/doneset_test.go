package keyorder_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/keyorder"
)

type Span = keyorder.Span

func TestDoneSetRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		base  int64
		spans []Span
	}{
		{name: "one span", base: 10, spans: []Span{{12, 15}}},
		{name: "adjacent to base", base: 0, spans: []Span{{0, 1}}},
		{name: "many", base: 1 << 40, spans: []Span{{1<<40 + 1, 1<<40 + 2}, {1<<40 + 3, 1<<40 + 700}, {1 << 41, 1<<41 + 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := keyorder.EncodeDoneSet(tt.base, tt.spans)
			assert.True(t, strings.HasPrefix(meta, "ko1:"), "version prefix: %q", meta)
			got, err := keyorder.DecodeDoneSet(tt.base, meta)
			require.NoError(t, err)
			assert.Equal(t, tt.spans, got)
		})
	}
}

// TestDoneSetTruncated: a done-set too large for the metadata keeps the
// spans that fit from the start, below 4000 bytes: the rest is redelivered.
func TestDoneSetTruncated(t *testing.T) {
	var spans []Span
	for i := range int64(5000) {
		spans = append(spans, Span{1000 + 3*i, 1000 + 3*i + 2})
	}
	meta := keyorder.EncodeDoneSet(1000, spans)
	assert.Less(t, len(meta), 4000, "metadata length")
	got, err := keyorder.DecodeDoneSet(1000, meta)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	assert.Less(t, len(got), len(spans), "spans kept")
	assert.Equal(t, spans[:len(got)], got, "the spans kept are the first ones")
}

func TestDoneSetDecode(t *testing.T) {
	tests := []struct {
		name string
		meta string
		want []Span
	}{
		{name: "empty", meta: ""},
		{name: "another client's metadata", meta: "member-1234"},
		{name: "no spans", meta: "ko1:"},
		{name: "two spans", meta: "ko1:" + base64.RawURLEncoding.EncodeToString([]byte{0x01, 0x02, 0x03, 0x01}), want: []Span{{6, 8}, {11, 12}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyorder.DecodeDoneSet(5, tt.meta)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDoneSetDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte
		wantErr string
	}{
		{name: "truncated varint", raw: []byte{0x80}, wantErr: "truncated gap"},
		{name: "missing length", raw: []byte{0x01}, wantErr: "truncated length"},
		{name: "empty span", raw: []byte{0x01, 0x00}, wantErr: "invalid span"},
		{name: "offset overflow", raw: []byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f}, wantErr: "offset overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyorder.DecodeDoneSet(5, "ko1:"+base64.RawURLEncoding.EncodeToString(tt.raw))
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
	_, err := keyorder.DecodeDoneSet(5, "ko1:!!")
	assert.ErrorContains(t, err, "done-set: illegal base64", "bad base64")
}

// TestWindow checks the commit point of a partition's window: the end of
// the contiguous done prefix, and the done spans beyond it.
func TestWindow(t *testing.T) {
	tests := []struct {
		name      string
		committed int64
		skip      []Span
		offsets   []int64
		done      []int64
		wantBase  int64
		wantSpans []Span
	}{
		{
			name: "nothing done", committed: -1,
			offsets: []int64{0, 1, 2}, wantBase: 0,
		},
		{
			name: "done prefix", committed: -1,
			offsets: []int64{0, 1, 2}, done: []int64{1, 0}, wantBase: 2,
		},
		{
			name: "holes", committed: -1,
			offsets: []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, done: []int64{1, 2, 5, 9},
			wantBase: 0, wantSpans: []Span{{1, 3}, {5, 6}, {9, 10}},
		},
		{
			name: "offsets missing between done records count as done", committed: 3,
			offsets: []int64{3, 4, 7, 8, 10}, done: []int64{4, 7},
			wantBase: 3, wantSpans: []Span{{4, 8}},
		},
		{
			name: "committed done-set skips polled records and keeps the rest", committed: 10,
			skip: []Span{{12, 14}, {20, 25}}, offsets: []int64{10, 11, 12, 13}, done: []int64{11},
			wantBase: 10, wantSpans: []Span{{11, 14}, {20, 25}},
		},
		{
			name: "skipped records close the prefix", committed: 10,
			skip: []Span{{11, 13}}, offsets: []int64{10, 11, 12, 13}, done: []int64{10},
			wantBase: 13,
		},
		{
			name: "records polled twice are ignored", committed: -1,
			offsets: []int64{0, 1, 1, 0, 2}, done: []int64{0, 1, 2}, wantBase: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, spans := keyorder.Window(tt.committed, tt.skip, tt.offsets, tt.done)
			assert.Equal(t, tt.wantBase, base, "committable offset")
			assert.Equal(t, tt.wantSpans, spans, "done spans")
		})
	}
}
