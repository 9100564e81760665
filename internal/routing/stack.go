package routing

import (
	"math/rand/v2"
	"sync/atomic"
	"unsafe"
)

// stackGauge learns how much stack a handler's deliveries need, and has
// each of them grow its stack to that at once.
//
// Watermill runs every delivery on a new goroutine, whose stack starts at
// the runtime's minimum (2 KiB). A handler that needs more (decoding a
// payload, a database driver) makes the runtime grow it by copying, and a
// copy costs in proportion to the frames it moves: under the handler there
// are the router's and the chain's, and a codec's own. Grown at the top of
// the chain, where the frames are few, the stack is copied once and at a
// fraction of the cost.
//
// The gauge has a level: the stack each delivery grows first (none, 4, 8
// or 16 KiB, growStack). It watches whether the stack moved (the runtime
// grew it) while the chain ran: after deepAfter deliveries in a row whose
// stack moved, the level goes up. One delivery in probeEvery, at random,
// grows one level less, and if its stack did not move, the level goes
// down. Safe for concurrent use.
type stackGauge struct {
	level atomic.Int32
	// moved counts the deliveries in a row whose stack moved at level.
	moved atomic.Int32
	// Every delivery reads the gauge, and almost none writes it: it has
	// a cache line of its own (a 64-byte object is allocated on one),
	// which nothing else written shares.
	_ [64 - 8]byte
}

const (
	// deepAfter is how many deliveries in a row must have grown their
	// stack before the level goes up.
	deepAfter = 16
	// probeEvery is how often a delivery tries one level less.
	probeEvery = 1024
	// maxStackLevel is the highest level: 16 KiB.
	maxStackLevel = 3
)

// next is the level the delivery about to run grows its stack to. The
// probes are picked at random: a counter shared by the deliveries of
// every processor would cost more than the rest of the gauge.
func (g *stackGauge) next() int32 {
	l := g.level.Load()
	if l > 0 && rand.Uint32()%probeEvery == 0 {
		return l - 1
	}
	return l
}

// observe records whether the stack of a delivery that grew it to level l
// first moved while the chain ran.
func (g *stackGauge) observe(l int32, moved bool) {
	cur := g.level.Load()
	switch {
	case l < cur: // a probe
		if !moved && g.level.CompareAndSwap(cur, l) {
			g.moved.Store(0)
		}
	case l > cur || cur == maxStackLevel:
	case moved:
		if g.moved.Add(1) >= deepAfter && g.level.CompareAndSwap(cur, cur+1) {
			g.moved.Store(0)
		}
	case g.moved.Load() != 0:
		g.moved.Store(0)
	}
}

// growStack grows the stack to level l (above 0), called from the
// chain's first frame: it calls a function whose frame, with the guard
// the runtime keeps below it, fits in the stack of that level and not in
// the one below. It is inlined, so the stack the runtime copies holds a
// frame less.
func growStack(l int32) { growers[l-1](0) }

// growers are the functions growStack calls, by level.
var growers = [maxStackLevel]func(int) byte{grow4K, grow8K, grow16K}

// The growNK functions have frames of 1.5, 4 and 10 KiB; their argument and
// result keep the frame from being optimised away.

//go:noinline
func grow4K(i int) byte {
	var b [3 << 9]byte
	return b[i%len(b)]
}

//go:noinline
func grow8K(i int) byte {
	var b [4 << 10]byte
	return b[i%len(b)]
}

//go:noinline
func grow16K(i int) byte {
	var b [10 << 10]byte
	return b[i%len(b)]
}

// stackMark is an address in the frame of its caller's callee: called
// twice from the same frame, it returns different values if the runtime
// moved the goroutine's stack in between. A stack grown, then shrunk by
// the garbage collector back onto the memory it left, reads as unmoved: a
// probe may lower a gauge's level wrongly, and deepAfter deliveries raise
// it again.
//
//go:noinline
func stackMark() uintptr {
	var b byte
	return uintptr(unsafe.Pointer(&b))
}
