package keyorder

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// The done-set is the metadata string of a partition's offset commit:
// doneSetVersion, then the unpadded URL-safe base64 of uvarint pairs
// (gap, length), one per span of done offsets after the committed offset;
// a gap counts from the end of the previous span (the first from the
// committed offset). A metadata string without the prefix (another
// client's, or none) means no done-set.
const (
	doneSetVersion = "ko1:"
	// maxMetadata keeps the string below Kafka's default
	// offset.metadata.max.bytes (4096), with headroom.
	maxMetadata = 3900
	// maxSpanValue rejects decoded numbers that would overflow offsets.
	maxSpanValue = 1 << 62
)

// span is the half-open offset range [from, to).
type span struct{ from, to int64 }

// encodeDoneSet encodes spans (sorted, disjoint, all at or after base).
// Spans that do not fit in maxMetadata are left out from the end: they are
// then not known to be done, and are redelivered, never lost.
func encodeDoneSet(base int64, spans []span) string {
	if len(spans) == 0 {
		return ""
	}
	budget := (maxMetadata - len(doneSetVersion)) / 4 * 3 // raw bytes whose base64 fits
	raw := make([]byte, 0, min(budget, 16*len(spans)))
	var pair [2 * binary.MaxVarintLen64]byte
	prev := base
	for _, sp := range spans {
		n := binary.PutUvarint(pair[:], uint64(sp.from-prev))
		n += binary.PutUvarint(pair[n:], uint64(sp.to-sp.from))
		if len(raw)+n > budget {
			break
		}
		raw = append(raw, pair[:n]...)
		prev = sp.to
	}
	return doneSetVersion + base64.RawURLEncoding.EncodeToString(raw)
}

// decodeDoneSet decodes the metadata committed with offset base.
func decodeDoneSet(base int64, metadata string) ([]span, error) {
	encoded, ok := strings.CutPrefix(metadata, doneSetVersion)
	if !ok {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("done-set: %w", err)
	}
	var spans []span
	prev := base
	for len(raw) > 0 {
		gap, n := binary.Uvarint(raw)
		if n <= 0 {
			return nil, errors.New("done-set: truncated gap")
		}
		raw = raw[n:]
		length, n := binary.Uvarint(raw)
		if n <= 0 {
			return nil, errors.New("done-set: truncated length")
		}
		raw = raw[n:]
		if length == 0 || gap > maxSpanValue || length > maxSpanValue {
			return nil, fmt.Errorf("done-set: invalid span (gap %d, length %d)", gap, length)
		}
		from, to := prev+int64(gap), prev+int64(gap)+int64(length)
		if from < prev || to <= from {
			return nil, errors.New("done-set: offset overflow")
		}
		spans = append(spans, span{from: from, to: to})
		prev = to
	}
	return spans, nil
}
