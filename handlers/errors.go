package handlers

import (
	"errors"
	"time"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the message skips retries and goes to
// the poison queue on its first failure. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err}
}

// IsPermanent reports whether any error in err's chain was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// retryAfterError asks the retry policy to wait at least a given delay.
type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e retryAfterError) Error() string             { return e.err.Error() }
func (e retryAfterError) Unwrap() error             { return e.err }
func (e retryAfterError) RetryAfter() time.Duration { return e.delay }

// RetryAfter marks err as transient and asks for the next attempt after
// delay (as HTTP's Retry-After does); the retry policy caps the delay at its
// max_interval. RetryAfter(nil, d) is nil. Any error in the chain with a
// RetryAfter() time.Duration method asks the same.
func RetryAfter(err error, delay time.Duration) error {
	if err == nil {
		return nil
	}
	return retryAfterError{err: err, delay: delay}
}
