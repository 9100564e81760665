package routing

import (
	"sync/atomic"
	"unsafe"
)

// stackGauge learns whether a handler's deliveries need more stack than a
// goroutine starts with, and if so has each of them take it at once.
//
// Watermill runs every delivery on a new goroutine, whose stack starts at
// the runtime's minimum. A handler that needs more (decoding a payload, a
// database driver) makes the runtime grow it by copying, and a copy costs
// in proportion to the frames it moves: below the handler there are the
// router's and the chain's. Grown at the top of the chain, where those
// frames are few, the stack is copied once and at a fraction of the cost.
//
// The gauge watches whether a delivery's stack moved (the runtime grew it)
// while the chain ran. After deepAfter deliveries in a row whose stack
// grew, every delivery grows its stack first (growStack); one delivery in
// probeEvery goes without, and if its stack did not move, the gauge starts
// watching again. Safe for concurrent use.
type stackGauge struct {
	deep atomic.Bool
	// grew counts the deliveries in a row whose stack grew, while not deep.
	grew atomic.Int32
	// n counts the deliveries while deep, to pick the probes.
	n atomic.Uint32
}

const (
	// deepAfter is how many deliveries in a row must have grown their
	// stack before every delivery grows it first.
	deepAfter = 16
	// probeEvery is how often a deep handler's delivery goes without.
	probeEvery = 1024
)

// grow reports whether this delivery should grow its stack first: the
// handler is deep, and the delivery is not a probe. Inlined, so that
// growStack is called from the chain's first frame.
func (g *stackGauge) grow() bool {
	return g.deep.Load() && g.n.Add(1)%probeEvery != 0
}

// observe records whether the stack of a delivery that did not grow it
// first moved.
func (g *stackGauge) observe(moved bool) {
	switch {
	case moved && !g.deep.Load():
		if g.grew.Add(1) >= deepAfter {
			g.deep.Store(true)
		}
	case moved:
	case g.deep.Load():
		g.deep.Store(false)
		g.grew.Store(0)
	case g.grew.Load() != 0:
		g.grew.Store(0)
	}
}

// stackMark is an address in the frame of its caller's callee: called
// twice from the same frame, it returns different values if and only if
// the runtime moved the goroutine's stack in between.
//
//go:noinline
func stackMark() uintptr {
	var b byte
	return uintptr(unsafe.Pointer(&b))
}

// growStack has the runtime grow the stack, in one copy, to 8 KiB when
// called from the chain's first frame: its frame, and the guard the
// runtime keeps below it, do not fit in 4 KiB. Its argument and
// result keep its frame from being optimised away.
//
//go:noinline
func growStack(i int) byte {
	var b [growFrame]byte
	return b[i%growFrame]
}

// growFrame is growStack's frame: more than 4 KiB less the guard and the
// router's frames above it, less than 8 KiB less those.
const growFrame = 4096
