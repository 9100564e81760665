package keyorder

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Span is a half-open offset range [from, to), for the tests.
type Span = [2]int64

func toSpans(ss []Span) []span {
	out := make([]span, len(ss))
	for i, s := range ss {
		out[i] = span{from: s[0], to: s[1]}
	}
	return out
}

func fromSpans(ss []span) []Span {
	var out []Span
	for _, s := range ss {
		out = append(out, Span{s.from, s.to})
	}
	return out
}

// EncodeDoneSet encodes spans as the commit metadata of offset base.
func EncodeDoneSet(base int64, spans []Span) string { return encodeDoneSet(base, toSpans(spans)) }

// DecodeDoneSet decodes the commit metadata of offset base.
func DecodeDoneSet(base int64, metadata string) ([]Span, error) {
	spans, err := decodeDoneSet(base, metadata)
	return fromSpans(spans), err
}

// Window builds a partition committed at committed (-1: none) with the
// done-set skip, polls records at offsets, marks those in done as done, and
// returns its commit point: the committable offset and the done spans
// beyond it.
func Window(committed int64, skip []Span, offsets, done []int64) (int64, []Span) {
	p := newPartition(context.Background(), 0)
	if committed >= 0 {
		p.base, p.committed, p.skip = committed, committed, toSpans(skip)
	}
	byOffset := map[int64]*record{}
	for _, o := range offsets {
		if r := p.add(&kgo.Record{Offset: o}); r != nil {
			byOffset[o] = r
		}
	}
	for _, o := range done {
		p.markDone(byOffset[o])
	}
	return p.base, fromSpans(p.doneSpans())
}
