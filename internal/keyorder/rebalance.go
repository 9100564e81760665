package keyorder

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group callbacks of a subscription: partitions assigned, their
// committed offsets fetched, revoked, lost.

func (s *subscription) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.joined = true
	if ps := assigned[s.topic]; len(ps) > 0 {
		s.log.Info("partitions assigned", "partitions", ps)
	}
}

// onFetched sets up the newly assigned partitions from their committed
// offsets and done-sets, before any of their records is fetched.
func (s *subscription) onFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			// Newer responses name topics by ID only; this client
			// consumes one topic.
			if t.Topic != "" && t.Topic != s.topic {
				continue
			}
			for _, fp := range t.Partitions {
				if fp.ErrorCode != 0 {
					continue // kgo reports it and does not consume the partition
				}
				if old := s.parts[fp.Partition]; old != nil {
					s.forgetLocked(old)
				}
				p := s.newPartitionLocked(fp.Partition)
				if fp.Offset < 0 {
					continue // no commit: ResetOffset
				}
				p.base, p.baseEpoch, p.committed = fp.Offset, fp.LeaderEpoch, fp.Offset
				if fp.Metadata == nil {
					continue
				}
				p.committedMeta = *fp.Metadata
				spans, err := decodeDoneSet(fp.Offset, *fp.Metadata)
				if err != nil {
					s.log.Warn("ignoring the committed done-set", "partition", fp.Partition, "offset", fp.Offset, "error", err)
					continue
				}
				p.skip = spans
			}
		}
	}
	return nil
}

// onRevoked fences the revoked partitions, lets their lanes fill the holes
// below the fence for up to RevokeDrain, then commits and forgets them.
func (s *subscription) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.mu.Lock()
	s.joined = false
	var parts []*partition
	for _, id := range revoked[s.topic] {
		if p := s.parts[id]; p != nil {
			p.revoking, p.fence = true, p.handed
			parts = append(parts, p)
		}
	}
	s.mu.Unlock()
	if len(parts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RevokeDrain)
	err := s.waitUntil(ctx, func() bool {
		for _, p := range parts {
			if p.running > 0 {
				return false
			}
		}
		return true
	})
	cancel()
	if err != nil {
		s.log.Warn("revoke: gave up waiting for in-flight messages; they are cancelled and will be redelivered", "revoke_drain", s.cfg.RevokeDrain)
	}
	s.release(parts)
}

// release commits the given partitions and forgets them.
func (s *subscription) release(parts []*partition) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	var points []commitPoint
	ids := make([]int32, 0, len(parts))
	for _, p := range parts {
		if p.gone {
			continue
		}
		if pt, ok := pointLocked(p); ok {
			points = append(points, pt)
		}
		s.forgetLocked(p)
		ids = append(ids, p.id)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if err := s.commit(ctx, points); err != nil {
		s.log.Warn("commit of revoked partitions", "partitions", ids, "error", err)
		return
	}
	s.log.Info("partitions revoked", "partitions", ids)
}

// onLost forgets every partition without committing: another member may
// own them already. kgo drops the whole assignment after a loss.
func (s *subscription) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.joined = false
	for _, p := range s.parts {
		s.forgetLocked(p)
	}
	if len(lost[s.topic]) == 0 {
		// The group session ended (the brokers are unreachable, say) with
		// none of this topic's partitions assigned: nothing was lost.
		s.log.Debug("group session lost; no partitions were assigned")
		return
	}
	s.log.Warn("partitions lost with the group session: in-flight messages cancelled, uncommitted records will be redelivered", "partitions", lost[s.topic])
}
