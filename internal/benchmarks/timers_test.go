package benchmarks

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTimerLateness measures what BenchmarkKafkaConsumeIO's handler
// wait costs without eventfx, Watermill or Kafka: 256 goroutines (key
// mode's default max_in_flight) each wait 1 ms with time.Sleep, then keep
// a processor busy for a few microseconds (the work a message costs), b.N
// times in all. 256 slots over a 1 ms wait would give 256,000 a second.
//
// On Linux Go waits for its next timer in epoll_wait, whose timeout is in
// whole milliseconds, and rounds a shorter one up to 1 ms
// (runtime/netpoll_epoll.go; golang/go#53824): while every processor is
// idle, timers fire up to a millisecond late. With no work the goroutines
// wake together and sleep again together, and the waits stay close to
// 1 ms; with a little work they spread out, and a processor that goes idle
// with the next timer a fraction of a millisecond away sleeps a whole one;
// with enough work that the processors never idle, the timers are on time
// again. The rate then depends on the work per message in a way no
// framework controls; wait-ms/msg shows it.
func BenchmarkTimerLateness(b *testing.B) {
	const goroutines = 256
	for _, work := range []time.Duration{0, 2 * time.Microsecond, 4 * time.Microsecond, 6 * time.Microsecond, 8 * time.Microsecond} {
		b.Run("work-"+strconv.Itoa(int(work/time.Microsecond))+"us", func(b *testing.B) {
			var left, waited atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range goroutines {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						t := time.Now()
						time.Sleep(time.Millisecond)
						waited.Add(int64(time.Since(t)))
						for busy := time.Now(); time.Since(busy) < work; {
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			reportRate(b, b.N, elapsed)
			b.ReportMetric(float64(waited.Load())/1e6/float64(b.N), "wait-ms/msg")
		})
	}
}
