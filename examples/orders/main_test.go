package main

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestOrdersStory(t *testing.T) {
	var out syncBuffer
	if err := run(&out, 90*time.Second); err != nil {
		t.Fatalf("orders: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()
	placed := map[string]string{}
	for _, m := range regexp.MustCompile(`\[orders\]   placed (o-\d) .* correlation_id=(\S+)`).FindAllStringSubmatch(text, -1) {
		placed[m[1]] = m[2]
	}
	if len(placed) != 4 {
		t.Fatalf("want 4 placed orders, got %v in:\n%s", placed, text)
	}
	// The ID of the message shipping poisoned, as the ops service's
	// poison-desk received it: its replay keeps it.
	m := regexp.MustCompile(`\[poison\]   (\S+) topic=payments handler=shipping `).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no poisoned message of shipping in:\n%s", text)
	}
	poisonedID := m[1]
	wants := []string{
		"[billing]  o-2 attempt 1: payment gateway timeout (will retry) correlation_id=" + placed["o-2"],
		"[billing]  o-2 attempt 3: captured 19.99 for grace correlation_id=" + placed["o-2"],
		"[shipping] o-1 shipped to eu correlation_id=" + placed["o-1"],
		"[shipping] o-2 shipped to us correlation_id=" + placed["o-2"],
		"[shipping] o-4 shipped to moon correlation_id=" + placed["o-4"] + " (replay 1 of message " + poisonedID + ")",
		`handler=billing attempts=1 reason="invalid main.OrderPlaced: amount must be positive, got -500" correlation_id=` + placed["o-3"],
		`handler=shipping attempts=1 reason="no carrier for region \"moon\"" correlation_id=` + placed["o-4"],
		"[replay]   replayed 1, skipped 1 (already replayed 0, filtered 1), failed 0",
		"== The end",
	}
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
	if strings.Contains(text, "o-3 shipped") {
		t.Errorf("the invalid order o-3 shipped:\n%s", text)
	}
	if n := strings.Count(text, "[shipping] o-4 shipped"); n != 1 {
		t.Errorf("o-4 shipped %d times, want once:\n%s", n, text)
	}
}
