package schema

import (
	"encoding/binary"
	"fmt"
)

// headerSize is the Confluent framing before the value: a magic byte and
// a 4-byte schema ID.
const headerSize = 5

// magicByte starts every framed value.
const magicByte = 0

// appendHeader appends the framing of schema id to b.
func appendHeader(b []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(b, magicByte), uint32(id))
}

// frameError is a value that is not in the Schema Registry wire format.
type frameError struct {
	Len   int  // the value's length
	First byte // its first byte, when Len > 0
}

func (e *frameError) Error() string {
	if e.Len < headerSize {
		return fmt.Sprintf("not Schema Registry framing: %d bytes, want at least %d (magic byte 0 and a 4-byte schema ID)", e.Len, headerSize)
	}
	return fmt.Sprintf("not Schema Registry framing: first byte 0x%02x, want the magic byte 0", e.First)
}

// ParseFrame splits a framed value into its schema ID and the encoded
// value.
func ParseFrame(b []byte) (id int, value []byte, err error) {
	if len(b) < headerSize || b[0] != magicByte {
		e := &frameError{Len: len(b)}
		if len(b) > 0 {
			e.First = b[0]
		}
		return 0, nil, e
	}
	return int(binary.BigEndian.Uint32(b[1:headerSize])), b[headerSize:], nil
}
