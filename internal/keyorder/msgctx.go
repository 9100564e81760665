package keyorder

import (
	"context"
	"sync"
	"time"

	"github.com/eventfx/eventfx/internal/meta"
)

// msgCtx is a message's context: the values of parent (the Subscribe
// context's) and the record's position (meta.Record), cancelled when the
// delivery ends
// (end) or when its partition's context ends. It is what
// context.WithCancel plus context.AfterFunc(partition, cancel) would be,
// without their cost until somebody waits on it: the channel, and the
// registration with the partition's context, are made on the first call of
// Done. Most handlers never wait on their context; registering every
// message with its partition's context made all the lanes of a partition
// contend for that context's lock.
type msgCtx struct {
	parent context.Context
	part   context.Context
	pos    meta.Position

	mu    sync.Mutex
	done  chan struct{} // nil until Done
	stop  func() bool   // unregisters from part, once registered
	ended bool
}

// init sets up a zero msgCtx, before it is shared.
func (c *msgCtx) init(parent, part context.Context, pos meta.Position) {
	c.parent, c.part, c.pos = parent, part, pos
}

func (c *msgCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *msgCtx) Value(key any) any {
	if meta.IsRecordKey(key) {
		return c.pos
	}
	return c.parent.Value(key)
}

func (c *msgCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.ended || c.part.Err() != nil {
			close(c.done)
		} else {
			c.stop = context.AfterFunc(c.part, c.end)
		}
	}
	return c.done
}

func (c *msgCtx) Err() error {
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	if ended {
		return context.Canceled
	}
	if c.part.Err() != nil {
		return context.Canceled
	}
	return nil
}

// end cancels the context. Idempotent.
func (c *msgCtx) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended = true
	if c.done != nil {
		close(c.done)
	}
	if c.stop != nil {
		c.stop()
	}
}
