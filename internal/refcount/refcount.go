// Package refcount shares one instance of a resource among the users of a
// process: the first to acquire it starts it, the last to release it stops
// it (the embedded broker and the in-process Schema Registry of services
// configured with kafka.brokers: [embedded]).
package refcount

import "sync"

// Shared is a resource started on first use and stopped after the last.
// It is safe for concurrent use; the zero value is not usable (New).
type Shared[T any] struct {
	start func() (T, error)
	stop  func(T)

	mu    sync.Mutex
	v     T
	users int
}

// New returns a Shared that starts its resource with start and stops it
// with stop.
func New[T any](start func() (T, error), stop func(T)) *Shared[T] {
	return &Shared[T]{start: start, stop: stop}
}

// Acquire returns the resource, starting it if no one uses it, and a
// release function to call once done with it (later calls do nothing).
func (s *Shared[T]) Acquire() (T, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == 0 {
		v, err := s.start()
		if err != nil {
			var zero T
			return zero, nil, err
		}
		s.v = v
	}
	s.users++
	v := s.v
	var once sync.Once
	release := func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.users--
			if s.users == 0 {
				s.stop(s.v)
				var zero T
				s.v = zero
			}
		})
	}
	return v, release, nil
}
