package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is written by handler goroutines and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestSchemasStory(t *testing.T) {
	var out syncBuffer
	if err := run(&out, 60*time.Second); err != nil {
		t.Fatalf("schemas: %v\noutput:\n%s", err, out.b.String())
	}
	text := out.b.String()
	for _, want := range []string{
		"[billing]  o-1 for ada: 4200 cents, currency EUR",
		"[shipping] o-2 paid (1999 EUR)",
		"[shipping] o-3 paid (500 EUR)",
		"[poison]   billing from orders: decode main.BilledOrder: not Schema Registry framing: first byte 0x7b, want the magic byte 0",
		"[registry] orders-value: versions [1]",
		"[registry] payments-value: versions [1]",
		"== The end",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in output:\n%s", want, text)
		}
	}
}
