package app

import "github.com/eventfx/eventfx/handlers"

// WithCodec returns a Publisher that encodes PublishEvent's events with c
// (a Schema Registry codec, for example) instead of JSON. It shares p's
// producer: both may be used at once, and neither needs closing.
func (p *Publisher) WithCodec(c handlers.Codec) *Publisher {
	q := *p
	q.codec = c
	return &q
}
