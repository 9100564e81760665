package keyorder

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
)

// record is one polled record in its partition's window.
type record struct {
	rec *kgo.Record // dropped once done, to free memory
	// msg is rec's message, made when rec was filed, until it is handed
	// out; a nacked record is sent again as a new message.
	msg *message.Message
	// ctx is the context of msg, the first delivery's message: made
	// with the record, it costs no allocation of its own.
	ctx    msgCtx
	offset int64
	epoch  int32
	done   bool
}

// lane holds the queued records of one key of a partition. A lane exists
// while its goroutine runs (see subscription.runLane).
type lane struct {
	key   string
	queue []*record
	// slot is set while the lane's goroutine holds a MaxInFlight slot;
	// only that goroutine uses it.
	slot bool
}

// partition is the state of one assigned partition. Its fields are guarded
// by subscription.mu.
type partition struct {
	id int32
	// ctx ends when the partition is forgotten, or when the subscription
	// gives up on its in-flight messages: their contexts derive from it,
	// and its lanes stop waiting.
	ctx    context.Context
	cancel context.CancelFunc
	// gone is set when the partition is forgotten: late acks no longer
	// change it.
	gone bool
	// quit is closed when the partition's lanes must stop handing out
	// messages: the subscription halted, or the partition is forgotten
	// (stopLocked). It is all a lane waiting for a slot or a receiver
	// watches besides: the subscription gives up on in-flight messages
	// (ctx) only after it halted.
	quit    chan struct{}
	stopped bool

	// window holds the polled records from window[head], the first one
	// not done, in offset order.
	window []*record
	head   int
	// base is the committable offset: every offset below it is done. -1
	// until known (no commit and nothing polled).
	base      int64
	baseEpoch int32
	// next is the offset after the last polled record, -1 before the
	// first.
	next int64
	// skip holds the done spans read from the last commit's metadata that
	// no poll has reached yet.
	skip []span
	// notDone counts the window's records not done.
	notDone int

	lanes map[string]*lane
	// running counts the partition's lane goroutines.
	running int
	// handed is the highest offset a lane took for delivery, -1 none.
	handed int64
	// revoking is set while the partition is revoked; lanes then hand out
	// only records at or below fence (hole filling).
	revoking bool
	fence    int64
	// paused is set while fetching is paused (see
	// subscription.guardLocked).
	paused bool

	// committed and committedMeta are the last commit, by us or read at
	// assignment; committed is -1 without one.
	committed     int64
	committedMeta string
}

func newPartition(parent context.Context, id int32) *partition {
	ctx, cancel := context.WithCancel(parent)
	return &partition{
		id: id, ctx: ctx, cancel: cancel, quit: make(chan struct{}),
		base: -1, baseEpoch: -1, next: -1, handed: -1, committed: -1,
		lanes: make(map[string]*lane),
	}
}

// stopLocked closes quit, once.
func (p *partition) stopLocked() {
	if !p.stopped {
		p.stopped = true
		close(p.quit)
	}
}

// add appends a polled record to the window. It returns nil for a record
// polled before (kgo does not repeat records, but a reset might).
func (p *partition) add(kr *kgo.Record) *record {
	if p.next >= 0 && kr.Offset < p.next {
		return nil
	}
	p.next = kr.Offset + 1
	if p.base < 0 {
		p.base = kr.Offset // no commit: the window starts at the first record
	}
	r := &record{rec: kr, offset: kr.Offset, epoch: kr.LeaderEpoch, done: p.skipped(kr.Offset)}
	if r.done {
		r.rec = nil
	} else {
		p.notDone++
	}
	p.window = append(p.window, r)
	p.advance()
	return r
}

// skipped reports whether the last commit's done-set holds offset, which
// must not be below the previous call's.
func (p *partition) skipped(offset int64) bool {
	for len(p.skip) > 0 && p.skip[0].to <= offset {
		p.skip = p.skip[1:]
	}
	return len(p.skip) > 0 && p.skip[0].from <= offset
}

// markDone marks r done and advances the done prefix.
func (p *partition) markDone(r *record) {
	r.done = true
	r.rec = nil
	p.notDone--
	p.advance()
}

// advance moves base past the done records at the head of the window.
func (p *partition) advance() {
	for p.head < len(p.window) && p.window[p.head].done {
		r := p.window[p.head]
		p.window[p.head] = nil
		p.head++
		if r.offset >= p.base {
			p.base, p.baseEpoch = r.offset+1, r.epoch
		}
	}
	switch {
	case p.head == len(p.window):
		p.window, p.head = p.window[:0], 0
	case p.head > 1024 && p.head*2 > len(p.window):
		// Reclaim the dead head of the slice.
		n := copy(p.window, p.window[p.head:])
		clear(p.window[n:])
		p.window, p.head = p.window[:n], 0
	}
}

// windowLen is the number of records from the first one not done.
func (p *partition) windowLen() int { return len(p.window) - p.head }

// held is the number of records done but not committable yet: behind the
// first one not done.
func (p *partition) held() int { return p.windowLen() - p.notDone }

// doneSpans returns the spans of done offsets beyond base: the window's done
// records, and the spans of the last commit's done-set not polled yet.
// Offsets missing between two done records (compacted, or transaction
// markers) are never delivered, so they count as done.
func (p *partition) doneSpans() []span {
	var spans []span
	open := false
	for _, r := range p.window[p.head:] {
		switch {
		case r.done && open:
			spans[len(spans)-1].to = r.offset + 1
		case r.done:
			spans = append(spans, span{from: r.offset, to: r.offset + 1})
			open = true
		default:
			open = false
		}
	}
	for _, sp := range p.skip {
		sp.from = max(sp.from, p.next, p.base)
		if sp.from >= sp.to {
			continue
		}
		if n := len(spans); n > 0 && spans[n-1].to >= sp.from {
			spans[n-1].to = max(spans[n-1].to, sp.to)
			continue
		}
		spans = append(spans, sp)
	}
	return spans
}
