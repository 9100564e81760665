package bench

import (
	"time"

	"github.com/eventfx/eventfx/internal/loadgen"
)

// Result is what bench prints (--json: as is).
type Result struct {
	// Summary is the latency histogram's summary, which Latency gives in
	// milliseconds.
	Summary loadgen.Summary `json:"-"`

	Config Setup `json:"config"`
	// Rate is the paced run's rate, requested and achieved; nil unpaced
	// (no --rate), when the object is left out of the JSON.
	Rate    *Rate   `json:"rate,omitempty"`
	Publish Publish `json:"publish"`
	Consume Consume `json:"consume"`
	Latency Latency `json:"latency_ms"`
}

type Setup struct {
	Brokers    []string `json:"brokers"`
	Embedded   bool     `json:"embedded"`
	Topic      string   `json:"topic"`
	Partitions int      `json:"partitions"`
	Messages   int      `json:"messages"`
	Size       int      `json:"size"`
	Batch      int      `json:"batch"`
	Keys       int      `json:"keys"`
	Acks       string   `json:"acks"`
	Consume    string   `json:"consume"`
}

type Publish struct {
	Messages  int     `json:"messages"`
	Seconds   float64 `json:"seconds"`
	MsgPerSec float64 `json:"msg_per_sec"`
	MBPerSec  float64 `json:"mb_per_sec"`
}

type Consume struct {
	Messages   int     `json:"messages"`
	Duplicates int     `json:"duplicates"`
	Seconds    float64 `json:"seconds"`
	MsgPerSec  float64 `json:"msg_per_sec"`
}

// Rate is what a paced run offered: Requested messages per second, and
// Achieved, the messages over the time from the first send to one
// interval (1/Requested) after the last, so that sends exactly on
// schedule achieve the requested rate. MaxBehind is the latest a call
// started after its first message was due: the pacer's delay, not
// counted in the latencies (each message's is from its own send).
type Rate struct {
	Requested   int     `json:"requested_per_sec"`
	Achieved    float64 `json:"achieved_per_sec"`
	MaxBehindMs float64 `json:"max_behind_ms"`
	// MaxBehind is MaxBehindMs as a duration.
	MaxBehind time.Duration `json:"-"`
}

type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Payload is a JSON value of exactly size bytes (the handler decodes
// it, as a typed handler would): a string of 'x's, or "0" for size 1.
func Payload(size int) []byte {
	if size == 1 {
		return []byte("0")
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = 'x'
	}
	b[0], b[size-1] = '"', '"'
	return b
}

// PerSec is n per second of d.
func PerSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Millis is d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// LatencyOf is s in milliseconds.
func LatencyOf(s loadgen.Summary) Latency {
	return Latency{P50: Millis(s.P50), P90: Millis(s.P90), P99: Millis(s.P99), Max: Millis(s.Max)}
}
