package handlers

// decoder is how a typed handler decodes its payloads: with its codec, on
// the goroutine of the delivery. The router grows that goroutine's stack
// at the top of the chain for handlers that need it (a codec's decode
// does), where growing it costs least.
type decoder struct {
	codec Codec
}

// newDecoder returns a decoder of c.
func newDecoder(c Codec) *decoder { return &decoder{codec: c} }

// unmarshal is the codec's Unmarshal.
func (d *decoder) unmarshal(data []byte, v any) error { return d.codec.Unmarshal(data, v) }
