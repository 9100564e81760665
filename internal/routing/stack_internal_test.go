package routing

import (
	"fmt"
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
// across a call that grew the stack, and not across one that did not.
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
// stack moved raise the level; one that did not breaks the run; a probe
// (one delivery in probeEvery at random, one level down) lowers it if its
// stack did not move.
func TestStackGaugeLearnsDeepHandlers(t *testing.T) {
	g := &stackGauge{}
	run := func(n int, moved bool) {
		for range n {
			g.observe(g.next(), moved)
		}
	}
	run(deepAfter-1, true)
	run(1, false)
	run(deepAfter-1, true)
	assert.Equal(t, int32(0), g.next(), "the run was broken")
	run(1, true)
	assert.Equal(t, int32(1), g.level.Load(), "deepAfter in a row")

	levels := map[int32]int{}
	for range 100 * probeEvery {
		levels[g.next()]++
	}
	assert.Len(t, levels, 2, "levels 1 and the probes' 0")
	assert.InDelta(t, 100, levels[0], 60, "about one probe in probeEvery, a level down")

	g.observe(0, true)
	assert.Equal(t, int32(1), g.level.Load(), "a probe whose stack moved")
	g.observe(0, false)
	assert.Equal(t, int32(0), g.level.Load(), "a probe whose stack did not move")

	run(deepAfter*(maxStackLevel+2), true)
	assert.Equal(t, int32(maxStackLevel), g.level.Load(), "the level stops at maxStackLevel")
}

// TestGrowStackGrowsToItsLevel: on a new goroutine, growing to a level
// leaves room for what needs that level's stack, and not for more.
func TestGrowStackGrowsToItsLevel(t *testing.T) {
	tests := []struct {
		level int32
		kib   int // deepFrames(kib) fits in the level's stack
	}{
		{1, 2},
		{2, 6},
		{3, 13},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.level), func(t *testing.T) {
			moved := make(chan [2]bool)
			go func() {
				growStack(tt.level)
				mark := stackMark()
				deepFrames(tt.kib)
				fits := stackMark() == mark
				deepFrames(2 * tt.kib)
				moved <- [2]bool{fits, stackMark() == mark}
			}()
			assert.Equal(t, [2]bool{true, false}, <-moved, "fits, twice as much does not")
		})
	}
}
