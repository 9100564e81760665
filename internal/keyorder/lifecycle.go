package keyorder

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// commitLoop commits the done offsets every CommitInterval.
func (s *subscription) commitLoop() {
	defer close(s.commitLoopDone)
	tick := time.NewTicker(s.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			if err := s.commitDone(ctx); err != nil {
				s.log.Warn("periodic commit", "error", err)
			}
			cancel()
		case <-s.quit:
			return
		}
	}
}

// haltNow stops handing out messages and polling, for good.
func (s *subscription) haltNow() {
	s.haltOnce.Do(func() {
		s.mu.Lock()
		close(s.halt)
		for _, p := range s.parts {
			p.stopLocked()
		}
		s.wakeLocked()
		s.mu.Unlock()
		s.stopPoll()
	})
}

func (s *subscription) halted() bool {
	select {
	case <-s.halt:
		return true
	default:
		return false
	}
}

// drain implements Subscriber.Drain for one subscription.
func (s *subscription) drain(ctx context.Context) error {
	s.haltNow()
	if err := s.waitIdle(ctx); err != nil {
		s.abandon()
		return fmt.Errorf("topic %s: in-flight messages cancelled: %w", s.topic, err)
	}
	if err := s.commitDone(ctx); err != nil {
		return fmt.Errorf("topic %s: commit: %w", s.topic, err)
	}
	return nil
}

// stop stops the subscription once; later calls return the first result.
func (s *subscription) stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.shutdown()
		close(s.done)
		s.parent.remove(s)
	})
	return s.stopErr
}

func (s *subscription) shutdown() error {
	s.haltNow()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RevokeDrain)
	if err := s.waitIdle(ctx); err != nil {
		s.log.Warn("close: gave up waiting for in-flight messages; they are cancelled and will be redelivered", "revoke_drain", s.cfg.RevokeDrain)
	}
	cancel()
	// Every lane now stops at once: nothing is left to wait for.
	s.abandon()
	_ = s.waitIdle(context.Background())
	<-s.pollDone
	close(s.quit)
	<-s.commitLoopDone

	ctx, cancel = context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var errs []error
	if err := s.commitDone(ctx); err != nil {
		errs = append(errs, fmt.Errorf("topic %s: commit: %w", s.topic, err))
	}
	// Leaving the group revokes the partitions: onRevoked finds nothing
	// new to commit and forgets them. The bound keeps an unreachable
	// broker from holding Close; the group then expires the member after
	// SessionTimeout.
	if err := s.client.LeaveGroupContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("topic %s: leave group: %w", s.topic, err))
	}
	s.client.Close()
	// The lanes, the only senders, have ended and none can start.
	close(s.out)
	return errors.Join(errs...)
}

// waitIdle waits until no lane runs.
func (s *subscription) waitIdle(ctx context.Context) error {
	return s.waitUntil(ctx, func() bool { return s.lanes == 0 })
}

// waitUntil waits until cond, evaluated under mu, holds, or ctx ends.
func (s *subscription) waitUntil(ctx context.Context, cond func() bool) error {
	s.mu.Lock()
	for !cond() {
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// wakeLocked wakes every waitUntil to check its condition again.
func (s *subscription) wakeLocked() {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

func (s *subscription) isJoined() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joined
}

func (s *subscription) addStats(st *Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Outstanding += s.outstanding
	st.InFlight += int(s.inFlight.Load())
	st.Lanes += s.lanes
	for _, p := range s.parts {
		st.Partitions = append(st.Partitions, PartitionStats{
			Topic: s.topic, Partition: p.id, Window: p.windowLen(), Held: p.held(), Paused: p.paused, Committed: p.committed,
		})
	}
}
