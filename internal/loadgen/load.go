package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one request of a load run. It returns nil when the request
// succeeded, else an error counted under its class (see Fail). It must
// bound its own duration (an http.Client timeout, say); ctx ends it early
// only when the run is interrupted.
type Op func(ctx context.Context) error

// ClassError is a failed request counted under Class (an HTTP status such
// as "503", or "transport").
type ClassError struct {
	Class string
	Err   error
}

func (e *ClassError) Error() string { return e.Err.Error() }
func (e *ClassError) Unwrap() error { return e.Err }

// Fail returns err counted under class.
func Fail(class string, err error) error { return &ClassError{Class: class, Err: err} }

// OtherClass is the class of an error that is not a *ClassError.
const OtherClass = "error"

func classOf(err error) string {
	if ce, ok := errors.AsType[*ClassError](err); ok {
		return ce.Class
	}
	return OtherClass
}

// Config bounds one closed-loop run: Clients clients, each starting its
// next request as soon as the previous one ended, until Requests requests
// were started or Duration has passed, whichever comes first. Requests in
// flight at the end finish and count. At least one bound is required.
type Config struct {
	// Clients is the number of concurrent clients. Required, at least 1.
	Clients int
	// Requests bounds the requests started, over all clients. 0: no bound.
	Requests int
	// Duration bounds the time during which requests start. 0: no bound.
	Duration time.Duration
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.Clients < 1 {
		errs = append(errs, fmt.Errorf("clients: must be at least 1, got %d", c.Clients))
	}
	if c.Requests < 0 {
		errs = append(errs, fmt.Errorf("requests: must not be negative, got %d", c.Requests))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration: must not be negative, got %s", c.Duration))
	}
	if c.Requests == 0 && c.Duration == 0 {
		errs = append(errs, errors.New("requests, duration: set at least one bound"))
	}
	return errors.Join(errs...)
}

// Result is what a run measured.
type Result struct {
	Clients int
	// Requests is the number of requests that ended, succeeded or failed.
	Requests int
	// Errors is the number of failed requests; ErrorsByClass splits it by
	// class and Samples holds the first error message of each class.
	Errors        int
	ErrorsByClass map[string]int
	Samples       map[string]string
	// Elapsed runs from the start until the last request ended.
	Elapsed time.Duration
	// Latency holds the duration of each successful request.
	Latency Histogram
}

// Rate is requests (succeeded or failed) per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Add adds the run o to r, as one run of both: the requests, errors and
// latencies, and the time, summed (runs one after the other, as rounds of
// one level that take turns with another load). A class's first error
// is the first run's that had one.
func (r *Result) Add(o Result) {
	r.Clients = o.Clients
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	r.Latency.Merge(&o.Latency)
	for c, n := range o.ErrorsByClass {
		if r.ErrorsByClass == nil {
			r.ErrorsByClass, r.Samples = map[string]int{}, map[string]string{}
		}
		if _, ok := r.Samples[c]; !ok {
			r.Samples[c] = o.Samples[c]
		}
		r.ErrorsByClass[c] += n
	}
}

// Run runs op under cfg's bounds and returns what it measured. When ctx
// ends first, Run stops starting requests, waits for those in flight
// (whose failures caused by ctx are not counted) and returns what it
// measured with ctx's error.
func Run(ctx context.Context, cfg Config, op Op) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	var (
		started  atomic.Int64
		wg       sync.WaitGroup
		start    = time.Now()
		deadline time.Time
		clients  = make([]Result, cfg.Clients)
	)
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	more := func() bool {
		switch {
		case ctx.Err() != nil:
			return false
		case !deadline.IsZero() && !time.Now().Before(deadline):
			return false
		case cfg.Requests > 0 && started.Add(1) > int64(cfg.Requests):
			return false
		}
		return true
	}
	for i := range clients {
		wg.Add(1)
		go func(r *Result) {
			defer wg.Done()
			for more() {
				t0 := time.Now()
				err := op(ctx)
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					return // interrupted, not failed
				}
				r.Requests++
				if err == nil {
					r.Latency.Record(d)
					continue
				}
				r.Errors++
				c := classOf(err)
				if r.ErrorsByClass == nil {
					r.ErrorsByClass, r.Samples = map[string]int{}, map[string]string{}
				}
				if r.ErrorsByClass[c]++; r.ErrorsByClass[c] == 1 {
					r.Samples[c] = err.Error()
				}
			}
		}(&clients[i])
	}
	wg.Wait()
	total := Result{Clients: cfg.Clients, Elapsed: time.Since(start), ErrorsByClass: map[string]int{}, Samples: map[string]string{}}
	for _, r := range clients {
		total.Requests += r.Requests
		total.Errors += r.Errors
		for c, n := range r.ErrorsByClass {
			total.ErrorsByClass[c] += n
			if _, ok := total.Samples[c]; !ok {
				total.Samples[c] = r.Samples[c]
			}
		}
		total.Latency.Merge(&r.Latency)
	}
	return total, ctx.Err()
}
