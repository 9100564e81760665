package handlers

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// decoder runs a codec's Unmarshal on a few goroutines of its own, which
// live as long as the handler. The router runs each delivery on a new
// goroutine, whose stack starts at the runtime's minimum: a codec's
// decode, below the chain's frames, outgrew it and the runtime copied the
// stack, twice a message, at a greater cost than the decode itself. The
// decoder's goroutines keep the stack they grew. A decode that finds none
// of them waiting runs on the caller's goroutine, so one slow decode (a
// schema fetched from a registry) never holds up another.
//
// Its goroutines end once the handler that holds the decoder is gone.
type decoder struct {
	*decodeWorkers
}

// decodeWorkers is the part of a decoder its goroutines hold: they must
// not keep the decoder itself reachable, or they would never end.
type decodeWorkers struct {
	codec Codec
	// jobs hands a decode to a waiting goroutine; closed when the
	// decoder is gone.
	jobs chan *decodeJob
	// running counts the goroutines, at most max.
	running atomic.Int32
	max     int32
	free    sync.Pool // of *decodeJob
}

// decodeJob is one Unmarshal call.
type decodeJob struct {
	data []byte
	v    any
	err  error
	// panicked is what the codec panicked with, if it did: the caller
	// panics with it, so the router's recoverer sees it as it would
	// have without the decoder.
	panicked any
	done     chan struct{} // one value when err or panicked is set
}

// newDecoder returns a decoder of c; it starts no goroutine until the first
// decode.
func newDecoder(c Codec) *decoder {
	w := &decodeWorkers{codec: c, jobs: make(chan *decodeJob), max: int32(decodeWorkersPerProc * runtime.GOMAXPROCS(0))}
	w.free.New = func() any { return &decodeJob{done: make(chan struct{}, 1)} }
	d := &decoder{w}
	runtime.AddCleanup(d, func(w *decodeWorkers) { close(w.jobs) }, w)
	return d
}

// decodeWorkersPerProc is how many goroutines a decoder may run per
// processor: decoding is CPU work, but a goroutine that just finished one
// is not waiting yet when the next caller comes.
const decodeWorkersPerProc = 2

// unmarshal is the codec's Unmarshal, run by one of the decoder's
// goroutines when one is waiting or may be started.
func (d *decoder) unmarshal(data []byte, v any) error {
	w := d.decodeWorkers
	j := w.free.Get().(*decodeJob)
	j.data, j.v = data, v
	select {
	case w.jobs <- j:
	default:
		if !w.start(j) {
			w.free.Put(j)
			return w.codec.Unmarshal(data, v)
		}
	}
	// The decoder, hence its jobs channel, stays open until the send.
	runtime.KeepAlive(d)
	<-j.done
	err, panicked := j.err, j.panicked
	*j = decodeJob{done: j.done}
	w.free.Put(j)
	if panicked != nil {
		panic(panicked)
	}
	return err
}

// start starts a goroutine with j as its first decode, unless max run.
func (w *decodeWorkers) start(j *decodeJob) bool {
	for {
		n := w.running.Load()
		if n >= w.max {
			return false
		}
		if w.running.CompareAndSwap(n, n+1) {
			break
		}
	}
	go w.run(j)
	return true
}

// run decodes j, then every job handed to it until the decoder is gone.
func (w *decodeWorkers) run(j *decodeJob) {
	for ok := true; ok; j, ok = <-w.jobs {
		w.decode(j)
	}
}

// decode runs one job, recovering a panic of the codec for the caller.
func (w *decodeWorkers) decode(j *decodeJob) {
	defer func() {
		if r := recover(); r != nil {
			j.panicked = r
		}
		j.done <- struct{}{}
	}()
	j.err = w.codec.Unmarshal(j.data, j.v)
}
