// Package loadgen measures load: a latency histogram with percentiles, and
// a bounded closed-loop load generator (a fixed number of clients, each
// sending its next request when the previous one answered). `eventfx bench`
// uses both.
package loadgen

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a recorded value is known within 1/2^subBits
// (under 0.8%) of itself. Values below 2^(subBits+1) ns are exact.
const subBits = 7

const (
	subCount   = 1 << subBits
	numBuckets = (64-subBits)*subCount + subCount // up to the largest int64
)

// Histogram records durations in log-linear buckets (as HdrHistogram does):
// fixed memory (about 60 KiB) whatever the count, each value known within
// 0.8%, and its minimum and maximum exactly. The zero value is empty and
// ready to use. It is not safe for concurrent use: give each goroutine its
// own and Merge them, or guard one with a mutex.
type Histogram struct {
	counts   []uint64 // allocated on first Record
	n        uint64
	min, max time.Duration
	sum      time.Duration
}

// bucket is the index of v's bucket (v >= 0).
func bucket(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	return shift*subCount + int(v>>shift)
}

// upper is the largest value of bucket i.
func upper(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	m := uint64(i - shift*subCount)
	return (m+1)<<shift - 1
}

// Record adds one duration; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	h.counts[bucket(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min and Max are the smallest and largest recorded values, exactly (0 when
// empty).
func (h *Histogram) Min() time.Duration { return h.min }

// Max is the largest recorded value, exactly (0 when empty).
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average of the recorded values (0 when empty).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Percentile returns the p-th percentile (0 < p <= 100) by nearest rank:
// the smallest recorded value that at least p% of the values do not
// exceed, within the histogram's precision (never below Min nor above
// Max; Percentile(100) is Max). It is 0 when the histogram is empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if p >= 100 {
		return h.max
	}
	// rank = ceil(p/100 × n), at least 1.
	rank := uint64(p / 100 * float64(h.n))
	if float64(rank) < p/100*float64(h.n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(upper(i))
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// Summary is the usual digest of a latency distribution.
type Summary struct {
	Count              uint64
	P50, P90, P99, Max time.Duration
}

// Summary returns h's count, p50, p90, p99 and max.
func (h *Histogram) Summary() Summary {
	return Summary{Count: h.n, P50: h.Percentile(50), P90: h.Percentile(90), P99: h.Percentile(99), Max: h.max}
}
