package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// deepFrames uses about n KiB of stack.
//
//go:noinline
func deepFrames(n int) byte {
	var b [1024]byte
	if n <= 1 {
		return b[n]
	}
	return deepFrames(n-1) + b[n%1024]
}

// TestStackMarkSeesTheStackMove: on a new goroutine, stackMark changes
// across a call that grew the stack, and only then.
func TestStackMarkSeesTheStackMove(t *testing.T) {
	tests := []struct {
		name  string
		call  func()
		moved bool
	}{
		{"shallow", func() {}, false},
		{"deep", func() { deepFrames(16) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			moved := make(chan bool)
			go func() {
				mark := stackMark()
				tt.call()
				moved <- stackMark() != mark
			}()
			assert.Equal(t, tt.moved, <-moved)
		})
	}
}

// TestStackGaugeLearnsDeepHandlers: deepAfter deliveries in a row whose
// stack grew make the gauge grow every stack but the probes; a probe
// whose stack did not move, or a delivery that breaks the run, resets it.
func TestStackGaugeLearnsDeepHandlers(t *testing.T) {
	g := &stackGauge{}
	for range deepAfter - 1 {
		g.observe(true)
	}
	assert.False(t, g.grow(), "one delivery short of deepAfter")
	g.observe(false)
	for range deepAfter - 1 {
		g.observe(true)
	}
	assert.False(t, g.grow(), "the run was broken")
	g.observe(true)
	grown := 0
	for range probeEvery {
		if g.grow() {
			grown++
		}
	}
	assert.Equal(t, probeEvery-1, grown, "all but one probe")
	g.observe(true)
	assert.True(t, g.deep.Load(), "a probe whose stack grew keeps it deep")
	g.observe(false)
	assert.False(t, g.grow(), "a probe whose stack did not move")
}
