package keyorder

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitPoint is what one partition's commit writes.
type commitPoint struct {
	p      *partition
	offset int64
	epoch  int32
	meta   string // the done-set
}

// pointLocked returns p's commit point, or false if there is nothing new to
// commit. It never returns an offset below the last commit.
func pointLocked(p *partition) (commitPoint, bool) {
	if p.base < 0 || p.base < p.committed {
		return commitPoint{}, false
	}
	meta := encodeDoneSet(p.base, p.doneSpans())
	if p.base == p.committed && meta == p.committedMeta {
		return commitPoint{}, false
	}
	return commitPoint{p: p, offset: p.base, epoch: p.baseEpoch, meta: meta}, true
}

// commitDone commits every assigned partition's done prefix and done-set,
// synchronously.
func (s *subscription) commitDone(ctx context.Context) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	var points []commitPoint
	for _, p := range s.parts {
		if pt, ok := pointLocked(p); ok {
			points = append(points, pt)
		}
	}
	s.mu.Unlock()
	return s.commit(ctx, points)
}

// commit writes points in one synchronous OffsetCommit, the done-sets as
// the partitions' metadata, and records what succeeded. The caller holds
// commitMu.
func (s *subscription) commit(ctx context.Context, points []commitPoint) error {
	if len(points) == 0 {
		return nil
	}
	offsets := make(map[int32]kgo.EpochOffset, len(points))
	metas := make(map[int32]*string, len(points))
	for _, pt := range points {
		offsets[pt.p.id] = kgo.EpochOffset{Epoch: pt.epoch, Offset: pt.offset}
		metas[pt.p.id] = &pt.meta
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				rp := &req.Topics[i].Partitions[j]
				if meta, ok := metas[rp.Partition]; ok {
					rp.Metadata = meta
				}
			}
		}
		return nil
	})
	var reqErr error
	failed := make(map[int32]error)
	s.client.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{s.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				reqErr = err
				return
			}
			for _, t := range resp.Topics {
				for _, rp := range t.Partitions {
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
						failed[rp.Partition] = err
					}
				}
			}
		})
	if reqErr != nil {
		return fmt.Errorf("commit offsets: %w", reqErr)
	}
	s.mu.Lock()
	var errs []error
	for _, pt := range points {
		if err, ok := failed[pt.p.id]; ok {
			errs = append(errs, fmt.Errorf("commit partition %d at %d: %w", pt.p.id, pt.offset, err))
			continue
		}
		pt.p.committed, pt.p.committedMeta = pt.offset, pt.meta
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}
