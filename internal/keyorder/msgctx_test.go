package keyorder

import (
	"context"
	"testing"
	"time"

	"github.com/eventfx/eventfx/internal/meta"
)

type ctxKey struct{}

// closed reports whether ch is closed within a second.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(time.Second):
		return false
	}
}

func TestMsgCtxBehavesAsWithCancelPlusAfterFunc(t *testing.T) {
	values := context.WithValue(context.Background(), ctxKey{}, "v")

	t.Run("end cancels it, before or after Done was asked", func(t *testing.T) {
		for _, early := range []bool{true, false} {
			part, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newMsgCtx(values, part, meta.Position{})
			var done <-chan struct{}
			if early {
				done = c.Done()
			}
			if c.Err() != nil {
				t.Fatalf("early=%v: Err before end = %v", early, c.Err())
			}
			c.end()
			c.end() // idempotent
			if done == nil {
				done = c.Done()
			}
			if !closed(done) || c.Err() != context.Canceled {
				t.Fatalf("early=%v: after end: closed=%v err=%v", early, closed(done), c.Err())
			}
		}
	})
	t.Run("the partition's end cancels it, and contexts derived from it", func(t *testing.T) {
		part, cancel := context.WithCancel(context.Background())
		c := newMsgCtx(values, part, meta.Position{})
		derived, stop := context.WithCancel(c)
		defer stop()
		cancel()
		if !closed(c.Done()) || !closed(derived.Done()) || c.Err() == nil {
			t.Fatal("not cancelled with its partition")
		}
		c.end()
	})
	t.Run("a partition already ended", func(t *testing.T) {
		part, cancel := context.WithCancel(context.Background())
		cancel()
		c := newMsgCtx(values, part, meta.Position{})
		if c.Err() == nil || !closed(c.Done()) {
			t.Fatal("a message of an ended partition is not cancelled")
		}
	})
	t.Run("values and deadline come from the parent", func(t *testing.T) {
		c := newMsgCtx(values, context.Background(), meta.Position{Partition: 3, Offset: 42})
		defer c.end()
		if c.Value(ctxKey{}) != "v" {
			t.Fatal("value lost")
		}
		if pos, ok := meta.Record(c); !ok || pos != (meta.Position{Partition: 3, Offset: 42}) {
			t.Fatalf("position %v, %v; want partition 3, offset 42", pos, ok)
		}
		if _, ok := c.Deadline(); ok {
			t.Fatal("a deadline out of nowhere")
		}
	})
}

func newMsgCtx(parent, part context.Context, pos meta.Position) *msgCtx {
	c := new(msgCtx)
	c.init(parent, part, pos)
	return c
}
