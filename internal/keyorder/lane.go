package keyorder

import (
	"time"

	"github.com/eventfx/eventfx/internal/meta"
)

// enqueueLocked queues r on its key's lane, starting the lane's goroutine
// if the lane had no work. Records without a key share one lane.
func (s *subscription) enqueueLocked(p *partition, r *record) {
	key := string(r.rec.Key)
	l := p.lanes[key]
	if l == nil {
		l = &lane{key: key}
		p.lanes[key] = l
		p.running++
		s.lanes++
		go s.runLane(p, l)
	}
	l.queue = append(l.queue, r)
}

// runLane delivers a lane's records one at a time, each only after the
// previous one was acked: the key's order holds by construction. It ends
// when the lane has no more work it may hand out, or when a record is
// abandoned (a later record of the key must then not run before it).
//
// The lane keeps its MaxInFlight slot from one record to the next (it
// still has one message out at most): giving it back and taking it again
// woke a lane waiting for a slot, and queued this one, on every message.
// It gives it back when it ends, and while it waits to resend a nacked
// record.
func (s *subscription) runLane(p *partition, l *lane) {
	defer s.releaseSlot(l)
	s.mu.Lock()
	r := s.nextLocked(p, l)
	s.mu.Unlock()
	for r != nil {
		if !s.deliver(p, l, r) {
			s.mu.Lock()
			s.endLaneLocked(p, l)
			s.mu.Unlock()
			return
		}
		// One critical section per message: record the ack, take the
		// next record.
		s.mu.Lock()
		s.markDoneLocked(p, r)
		r = s.nextLocked(p, l)
		s.mu.Unlock()
	}
}

// nextLocked takes the lane's next record, or ends the lane and returns
// nil: when its queue is empty, the subscription halted, the partition is
// forgotten, or the next record is beyond a revoked partition's fence.
func (s *subscription) nextLocked(p *partition, l *lane) *record {
	if !p.gone && !s.halted() && len(l.queue) > 0 {
		r := l.queue[0]
		if !p.revoking || r.offset <= p.fence {
			l.queue[0] = nil
			l.queue = l.queue[1:]
			p.handed = max(p.handed, r.offset)
			return r
		}
	}
	s.endLaneLocked(p, l)
	return nil
}

// endLaneLocked removes a lane whose goroutine ends. Records left in its
// queue stay not done in the window: the partition is being given up, or
// the subscription halted, so they are delivered again later, elsewhere.
func (s *subscription) endLaneLocked(p *partition, l *lane) {
	if p.lanes[l.key] == l {
		delete(p.lanes, l.key)
	}
	p.running--
	s.lanes--
	s.wakeLocked()
}

// outcome is how one delivery of a record ended.
type outcome int

const (
	abandoned outcome = iota // not handed out, or given up on: not done
	acked
	nacked
)

// deliver hands r out until it is acked (true), sending it again after
// NackResendSleep on every nack. It returns false when r is abandoned: the
// subscription halted or the partition is being given up.
func (s *subscription) deliver(p *partition, l *lane, r *record) bool {
	for {
		switch s.offer(p, l, r) {
		case acked:
			return true
		case abandoned:
			return false
		}
		// Nacked. A revoked or halted subscription does not retry:
		// the record is redelivered after the restart or rebalance.
		s.releaseSlot(l)
		s.mu.Lock()
		retry := !p.revoking && !s.halted()
		s.mu.Unlock()
		if !retry {
			return false
		}
		sleep := time.NewTimer(s.cfg.NackResendSleep)
		select {
		case <-sleep.C:
		case <-p.quit:
			sleep.Stop()
			return false
		}
	}
}

// offer sends one message of r to the output channel, with a
// MaxInFlight slot (taken unless the lane has it), and waits for its ack
// or nack. The message's context ends when offer returns, and earlier
// if the partition is given up.
//
// Every message passes through two waits here, so they watch as few
// channels as they can: a select locks, and queues on, each of its
// channels. Folding the subscription's halt into p.quit took one shared
// channel out of the hand-out wait and the slot wait; with the first
// delivery's context made with its record, a message by key costs about
// 0.4 µs less CPU (of 7-8 µs, 5 of 6 interleaved pairs of the 1 ms
// benchmark).
func (s *subscription) offer(p *partition, l *lane, r *record) outcome {
	if !l.slot {
		select {
		case s.slots <- struct{}{}:
			l.slot = true
		case <-p.quit:
			return abandoned
		}
	}

	// The first delivery's message was made with the record, and its
	// context lives in the record; a nacked record is sent again as new
	// ones (the handler of the last may still hold them).
	msg, ctx := r.msg, &r.ctx
	if msg != nil {
		r.msg = nil
	} else {
		msg, ctx = s.cfg.Unmarshal(r.rec), new(msgCtx)
	}
	ctx.init(s.msgBase, p.ctx, meta.Position{Partition: p.id, Offset: r.offset})
	defer ctx.end()
	msg.SetContext(ctx)
	select {
	case s.out <- msg:
	case <-p.quit:
		return abandoned
	}
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	// Not p.quit: a halt lets the messages in flight finish (the drain);
	// only giving up on them (p.ctx) ends this wait early.
	select {
	case <-msg.Acked():
		return acked // runLane records it
	case <-msg.Nacked():
		return nacked
	case <-p.ctx.Done():
		return abandoned
	}
}

// releaseSlot gives l's MaxInFlight slot back, if it has one.
func (s *subscription) releaseSlot(l *lane) {
	if l.slot {
		<-s.slots
		l.slot = false
	}
}

// markDoneLocked records r's ack in its partition's window.
func (s *subscription) markDoneLocked(p *partition, r *record) {
	if p.gone {
		return // given up on: it is redelivered to the partition's next owner
	}
	p.markDone(r)
	s.outstanding--
	s.guardLocked(p)
	// Only the poll loop waits on outstanding, and only once its gate is
	// shut (roomLocked): waking it on every ack cost a goroutine wake-up
	// and a lock round per message.
	if s.gateShut && s.outstanding <= s.cfg.MaxOutstanding*3/4 {
		s.wakeLocked()
	}
}
