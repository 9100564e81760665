package console

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scanIdle is how long a bounded read may go without a record before it
// ends with what it has.
const scanIdle = 3 * time.Second

// partitionBytes is the most a fetch of a partition brings for a read of
// at most n records per partition.
func partitionBytes(n int64) int32 {
	if n <= 500 {
		return 64 << 10
	}
	return 1 << 20
}

// span is the offsets [from, to) of one partition.
type span struct{ from, to int64 }

// errUnknownTopic is returned for a topic the cluster does not have.
var errUnknownTopic = errors.New("no such topic")

// bounds returns the start and end offset of every partition of topic.
//
// Topics that do not exist are left out, and never created: listing the
// offsets of a missing topic would create it on brokers that create
// topics on first use (kfake does), so the topics are looked up first.
func (c *Console) bounds(ctx context.Context, topics ...string) (map[string]map[int32]span, error) {
	described, err := c.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	topics = topics[:0:0]
	for name, d := range described {
		if d.Err == nil {
			topics = append(topics, name)
		}
	}
	if len(topics) == 0 {
		return map[string]map[int32]span{}, nil
	}
	starts, err := c.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	out := map[string]map[int32]span{}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
		case o.Err != nil:
			errs = append(errs, fmt.Errorf("%s partition %d: %w", o.Topic, o.Partition, o.Err))
		default:
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]span{}
			}
			s := span{from: 0, to: o.Offset}
			if st, ok := starts.Lookup(o.Topic, o.Partition); ok && st.Err == nil {
				s.from = st.Offset
			}
			out[o.Topic][o.Partition] = s
		}
	})
	return out, errors.Join(errs...)
}

// tailSpans returns the spans of the last n records of each partition of
// topic; nil when it does not exist.
func (c *Console) tailSpans(ctx context.Context, topic string, n int64) (map[int32]span, error) {
	b, err := c.bounds(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := b[topic]
	for p, s := range out {
		s.from = max(s.from, s.to-n)
		out[p] = s
	}
	return out, nil
}

// afterSpans returns, for each partition of topic, the span from the
// first record at or after t to the end, at most n records long.
func (c *Console) afterSpans(ctx context.Context, topic string, t time.Time, n int64) (map[int32]span, error) {
	b, err := c.bounds(ctx, topic)
	if err != nil || b[topic] == nil {
		return nil, err
	}
	after, err := c.adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	if err != nil {
		return nil, fmt.Errorf("offsets after %s: %w", t.Format(time.RFC3339), err)
	}
	out := b[topic]
	for p, s := range out {
		if o, ok := after.Lookup(topic, p); ok && o.Err == nil && o.Offset >= 0 {
			s.from = max(s.from, min(o.Offset, s.to))
		}
		s.to = min(s.to, s.from+n)
		out[p] = s
	}
	return out, nil
}

// scan reads the records of spans, partitions interleaved, each partition
// in offset order, and calls fn with each until fn returns false. It ends
// when every span was read, when no record arrived for scanIdle, or with
// ctx. Control records are skipped.
func (c *Console) scan(ctx context.Context, spans map[string]map[int32]span, fn func(*kgo.Record) bool) error {
	from := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{}
	n := 0
	longest := int64(0)
	for t, ps := range spans {
		for p, s := range ps {
			if s.to <= s.from {
				continue
			}
			longest = max(longest, s.to-s.from)
			if from[t] == nil {
				from[t], left[t] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			from[t][p] = kgo.NewOffset().At(s.from)
			left[t][p] = s.to
			n++
		}
	}
	if n == 0 {
		return nil
	}
	cl, err := c.o.Client.NewKafkaClient(
		kgo.ConsumePartitions(from),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
		// Small fetches: a bounded read needs little, and the console's
		// memory stays small; a read of a few records per partition (the
		// oldest unconsumed, a page of messages) fetches less still.
		kgo.FetchMaxBytes(4<<20),
		kgo.FetchMaxPartitionBytes(partitionBytes(longest)),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for n > 0 {
		pctx, cancel := context.WithTimeout(ctx, scanIdle)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			return nil // what was read is the answer
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if _, lost := errors.AsType[*kgo.ErrDataLoss](err); !lost && ferr == nil && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			end, ok := left[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				continue
			}
			if r.Offset+1 >= end {
				delete(left[r.Topic], r.Partition)
				n--
			}
			if r.Attrs.IsControl() {
				continue
			}
			if !fn(r) {
				return nil
			}
		}
	}
	return nil
}
