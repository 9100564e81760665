package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/loadgen"
)

// recorder is the handler's side: it counts each message once and
// records its latency. Safe for concurrent use.
type recorder struct {
	run      string
	n        int
	warm     chan struct{}
	warmOnce sync.Once
	done     chan struct{}

	consumed, duplicates atomic.Int64

	mu   sync.Mutex
	seen []uint64 // bit i: message i was handled
	hist loadgen.Histogram
	last time.Time
}

func newRecorder(run string, n int) *recorder {
	return &recorder{run: run, n: n, warm: make(chan struct{}), done: make(chan struct{}), seen: make([]uint64, (n+63)/64)}
}

// message is a bench message with sequence seq (a number or warmup)
// and partition key key ("" for none).
func (r *recorder) message(payload []byte, seq, key string) *message.Message {
	m := message.NewMessage("", payload)
	m.Metadata.Set(runHeader, r.run)
	m.Metadata.Set(seqHeader, seq)
	m.Metadata.Set(sentHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
	app.WithKey(key)(m)
	return m
}

// handle is the bench handler: a typed handler of JSON values.
func (r *recorder) handle(ctx context.Context, _ json.RawMessage) error {
	now := time.Now()
	if handlers.Header(ctx, runHeader) != r.run {
		return nil // an earlier record of an existing --topic
	}
	seqHdr := handlers.Header(ctx, seqHeader)
	if seqHdr == warmup {
		r.warmOnce.Do(func() { close(r.warm) })
		return nil
	}
	seq, err := strconv.Atoi(seqHdr)
	if err != nil || seq < 0 || seq >= r.n {
		return handlers.Permanent(fmt.Errorf("bad %s header %q", seqHeader, seqHdr))
	}
	sent, err := strconv.ParseInt(handlers.Header(ctx, sentHeader), 10, 64)
	if err != nil {
		return handlers.Permanent(fmt.Errorf("bad %s header: %w", sentHeader, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	word, bit := seq/64, uint64(1)<<(seq%64)
	if r.seen[word]&bit != 0 {
		r.duplicates.Add(1)
		return nil
	}
	r.seen[word] |= bit
	r.hist.Record(now.Sub(time.Unix(0, sent)))
	r.last = now
	if r.consumed.Add(1) == int64(r.n) {
		close(r.done)
	}
	return nil
}

func (r *recorder) lastAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recorder) summary() loadgen.Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hist.Summary()
}

// progress prints "published X/N consumed Y/N (R msg/s)" to stderr every
// second: rewritten in place on a terminal, one line each time otherwise.
type progress struct {
	w         io.Writer
	tty       bool
	n         int
	rec       *recorder
	published atomic.Int64
}

func newProgress(w io.Writer, n int, rec *recorder) *progress {
	return &progress{w: w, tty: isTerminal(w), n: n, rec: rec}
}

// run prints until the returned stop is called (idempotent), which clears
// the line on a terminal.
func (p *progress) run(start time.Time) (stop func()) {
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lastN, lastT := int64(0), start
		for {
			select {
			case <-quit:
				if p.tty {
					fmt.Fprint(p.w, "\r\x1b[K")
				}
				return
			case now := <-t.C:
				c := p.rec.consumed.Load()
				rate := float64(c-lastN) / now.Sub(lastT).Seconds()
				lastN, lastT = c, now
				l := fmt.Sprintf("eventfx: bench: %s published %d/%d consumed %d/%d (%.0f msg/s)",
					now.Sub(start).Round(time.Second), p.published.Load(), p.n, c, p.n, rate)
				if p.tty {
					fmt.Fprint(p.w, "\r\x1b[K"+l)
				} else {
					fmt.Fprintln(p.w, l)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit); <-exited })
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
