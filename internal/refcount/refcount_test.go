package refcount_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/refcount"
)

func TestStartedOnceStoppedAfterTheLastRelease(t *testing.T) {
	started, stopped := 0, 0
	s := refcount.New(func() (int, error) { started++; return started, nil }, func(int) { stopped++ })
	a, releaseA, err := s.Acquire()
	require.NoError(t, err)
	b, releaseB, err := s.Acquire()
	require.NoError(t, err)
	assert.Equal(t, a, b, "both users share one instance")
	releaseA()
	releaseA() // a second call does nothing
	assert.Equal(t, 0, stopped, "one user left")
	releaseB()
	assert.Equal(t, 1, stopped)
	c, releaseC, err := s.Acquire()
	require.NoError(t, err)
	defer releaseC()
	assert.Equal(t, 2, c, "started again after the last release")
}

func TestAFailedStartIsReturnedAndRetried(t *testing.T) {
	fail := true
	s := refcount.New(func() (string, error) {
		if fail {
			return "", errors.New("port in use")
		}
		return "up", nil
	}, func(string) {})
	_, _, err := s.Acquire()
	require.EqualError(t, err, "port in use")
	fail = false
	v, release, err := s.Acquire()
	require.NoError(t, err)
	defer release()
	assert.Equal(t, "up", v)
}
