package main

import (
	"bytes"
	"fmt"
	"regexp"
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

func TestQuickstartReceivesAllTenEventsWithTheirCorrelationIDs(t *testing.T) {
	var out syncBuffer
	if err := run(&out, false, 60*time.Second); err != nil {
		t.Fatalf("quickstart: %v\noutput:\n%s", err, out.b.String())
	}
	text := out.b.String()
	for i := range events {
		pub := regexp.MustCompile(fmt.Sprintf(`Published message: event_%d id=\S+ correlation_id=(\S+)`, i)).FindStringSubmatch(text)
		if pub == nil {
			t.Fatalf("event_%d was not published; output:\n%s", i, text)
		}
		want := fmt.Sprintf("Received message: event_%d correlation_id=%s\n", i, pub[1])
		if !bytes.Contains([]byte(text), []byte(want)) {
			t.Errorf("missing %q in output:\n%s", want, text)
		}
	}
}
