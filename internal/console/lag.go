package console

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
)

// Handler and partition states.
const (
	// StateConsuming: it lags, and commits progress.
	StateConsuming = "consuming"
	// StateIdle: it has consumed everything.
	StateIdle = "idle"
	// StateStalled: it lags with no commit progress for StallAfter.
	StateStalled = "stalled"
	// StateRebalancing: its consumer group is rebalancing.
	StateRebalancing = "rebalancing"
	// StateFailing: it poisoned messages within FailWindow.
	StateFailing = "failing"
)

// poisonTailRead bounds the poison records read per partition per sample.
const poisonTailRead = 10000

// HandlerLag is the lag of one handler's consumer group on its topic.
type HandlerLag struct {
	Service       string `json:"service"`
	Handler       string `json:"handler"`
	ConsumerGroup string `json:"consumer_group"`
	Topic         string `json:"topic"`
	// State is, in this order of precedence: rebalancing, failing,
	// stalled (some partition is), consuming (some partition lags), idle.
	State string `json:"state"`
	// GroupState is the consumer group's state as the broker says it
	// (Stable, Empty, PreparingRebalance, …), Members its members.
	GroupState string `json:"group_state"`
	Members    int    `json:"members"`
	// Lag is the records not yet consumed, over every partition;
	// LagSeconds the age of the oldest of them (0 when none).
	Lag        int64   `json:"lag"`
	LagSeconds float64 `json:"lag_seconds"`
	// Poisoned counts the messages it poisoned within the fail window.
	Poisoned   int            `json:"poisoned_recently"`
	Partitions []PartitionLag `json:"partitions"`
	// History is Lag at each of the last samples, oldest first.
	History []Point `json:"history"`
}

// PartitionLag is the lag of a consumer group on one partition.
type PartitionLag struct {
	Partition int32 `json:"partition"`
	// Committed is the group's committed offset; -1 when it has none
	// (it then starts at Start).
	Committed int64 `json:"committed"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
	Lag       int64 `json:"lag"`
	// LagSeconds is the age of the oldest unconsumed record.
	LagSeconds float64 `json:"lag_seconds"`
	State      string  `json:"state"`
	// SinceProgress is how long the committed offset has not moved, in
	// seconds, as far as the console saw.
	SinceProgress float64 `json:"since_progress_seconds"`
}

// Point is one sample of a sparkline.
type Point struct {
	At  time.Time `json:"at"`
	Lag int64     `json:"lag"`
}

// Lag is the answer of GET /api/lag.
type Lag struct {
	SampledAt time.Time    `json:"sampled_at"`
	Handlers  []HandlerLag `json:"handlers"`
}

// snapshot is one sample: the topology and the lag.
type snapshot struct {
	at       time.Time
	topology Topology
	lag      []HandlerLag
}

// tracker is what the sampler remembers between samples: when each
// partition's commit last moved, each handler's lag history, and the
// poison topics read so far with their recent poisonings.
type tracker struct {
	o        Options
	mu       sync.Mutex
	progress map[string]progress // by group/topic/partition
	history  map[string][]Point  // by group
	next     map[string]map[int32]int64
	poisoned map[string][]time.Time // by consumer group: when, within FailWindow
}

type progress struct {
	group     string
	committed int64
	since     time.Time
}

func newTracker(o Options) *tracker {
	return &tracker{o: o, progress: map[string]progress{}, history: map[string][]Point{}, next: map[string]map[int32]int64{}, poisoned: map[string][]time.Time{}}
}

// sample reads the announcements, the offsets of every announced handler's
// group and the poison topics' new records.
func (c *Console) sample(ctx context.Context, now time.Time) (snapshot, error) {
	as, err := c.readAnnouncements(ctx)
	if err != nil {
		return snapshot{}, fmt.Errorf("read announcements: %w", err)
	}
	top := c.topology(as, now)
	poisonTopics := []string{c.o.PoisonTopic}
	for _, s := range top.Services {
		for _, in := range s.Instances {
			if in.PoisonTopic != "" && !slices.Contains(poisonTopics, in.PoisonTopic) {
				poisonTopics = append(poisonTopics, in.PoisonTopic)
			}
		}
	}
	if err := c.tailPoison(ctx, poisonTopics, now); err != nil {
		return snapshot{}, err
	}
	lag, err := c.lag(ctx, top, now)
	if err != nil {
		return snapshot{}, err
	}
	state := map[string]string{}
	for _, l := range lag {
		state[l.ConsumerGroup] = l.State
	}
	for i := range top.Services {
		for j := range top.Services[i].Handlers {
			h := &top.Services[i].Handlers[j]
			h.State = state[h.ConsumerGroup]
		}
	}
	return snapshot{at: now, topology: top, lag: lag}, nil
}

// tailPoison reads the poison records written since the last sample (at
// the first, those of the fail window) and remembers, per consumer group,
// when each was poisoned.
func (c *Console) tailPoison(ctx context.Context, topics []string, now time.Time) error {
	t := c.tracker
	spans := map[string]map[int32]span{}
	for _, topic := range topics {
		t.mu.Lock()
		next := t.next[topic]
		t.mu.Unlock()
		var ps map[int32]span
		var err error
		if next == nil {
			ps, err = c.afterSpans(ctx, topic, now.Add(-c.o.FailWindow), poisonTailRead)
		} else {
			ps, err = c.tailSpans(ctx, topic, poisonTailRead)
			for p, s := range ps {
				if n, ok := next[p]; ok {
					s.from = max(s.from, n)
				}
				ps[p] = s
			}
		}
		if err != nil {
			return fmt.Errorf("poison topic %s: %w", topic, err)
		}
		spans[topic] = ps
	}
	var seen []struct {
		group string
		at    time.Time
	}
	err := c.scan(ctx, spans, func(r *kgo.Record) bool {
		group, at := "", r.Timestamp
		for _, h := range r.Headers {
			switch h.Key {
			case meta.ConsumerGroup:
				group = string(h.Value)
			case meta.PoisonedAt:
				if v, err := time.Parse(time.RFC3339Nano, string(h.Value)); err == nil {
					at = v
				}
			}
		}
		if group != "" {
			seen = append(seen, struct {
				group string
				at    time.Time
			}{group, at})
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("poison topics: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range spans {
		if t.next[topic] == nil {
			t.next[topic] = map[int32]int64{}
		}
		for p, s := range ps {
			t.next[topic][p] = s.to
		}
	}
	for _, s := range seen {
		t.poisoned[s.group] = append(t.poisoned[s.group], s.at)
	}
	for g, ts := range t.poisoned {
		ts = slices.DeleteFunc(ts, func(at time.Time) bool { return now.Sub(at) > c.o.FailWindow })
		if len(ts) == 0 {
			delete(t.poisoned, g)
		} else {
			t.poisoned[g] = ts
		}
	}
	return nil
}

// lag computes the lag of every handler of top.
func (c *Console) lag(ctx context.Context, top Topology, now time.Time) ([]HandlerLag, error) {
	var hs []HandlerRef
	var groups, topics []string
	for _, s := range top.Services {
		for _, h := range s.Handlers {
			hs = append(hs, h)
			if !slices.Contains(groups, h.ConsumerGroup) {
				groups = append(groups, h.ConsumerGroup)
			}
			if !slices.Contains(topics, h.Topic) {
				topics = append(topics, h.Topic)
			}
		}
	}
	if len(hs) == 0 {
		return []HandlerLag{}, nil
	}
	bounds, err := c.bounds(ctx, topics...)
	if err != nil {
		return nil, err
	}
	committed := c.adm.FetchManyOffsets(ctx, groups...)
	described, err := c.adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	out := make([]HandlerLag, 0, len(hs))
	// The oldest unconsumed record of each lagging partition: its age is
	// the partition's lag in time.
	oldest := map[string]map[int32]span{}
	for _, h := range hs {
		l := HandlerLag{Service: h.Service, Handler: h.Name, ConsumerGroup: h.ConsumerGroup, Topic: h.Topic, Partitions: []PartitionLag{}}
		if d, ok := described[h.ConsumerGroup]; ok {
			l.GroupState, l.Members = d.State, len(d.Members)
		}
		offs := committed[h.ConsumerGroup].Fetched
		for p, s := range bounds[h.Topic] {
			pl := PartitionLag{Partition: p, Committed: -1, Start: s.from, End: s.to}
			pos := s.from
			if o, ok := offs.Lookup(h.Topic, p); ok && o.Err == nil && o.At >= 0 {
				pl.Committed = o.At
				pos = max(o.At, s.from)
			}
			pl.Lag = max(s.to-pos, 0)
			if pl.Lag > 0 {
				if oldest[h.Topic] == nil {
					oldest[h.Topic] = map[int32]span{}
				}
				if o, ok := oldest[h.Topic][p]; !ok || pos < o.from {
					oldest[h.Topic][p] = span{pos, pos + 1}
				}
			}
			l.Partitions = append(l.Partitions, pl)
		}
		slices.SortFunc(l.Partitions, func(a, b PartitionLag) int { return cmp.Compare(a.Partition, b.Partition) })
		out = append(out, l)
	}
	born, err := c.timestamps(ctx, oldest)
	if err != nil {
		return nil, err
	}
	c.tracker.settle(out, born, now)
	slices.SortFunc(out, func(a, b HandlerLag) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Handler, b.Handler))
	})
	return out, nil
}

// timestamps reads the records of spans and returns their timestamps by
// "topic/partition/offset".
func (c *Console) timestamps(ctx context.Context, spans map[string]map[int32]span) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := c.scan(ctx, spans, func(r *kgo.Record) bool {
		out[position(r.Topic, r.Partition, r.Offset)] = r.Timestamp
		return true
	})
	return out, err
}

func position(topic string, p int32, o int64) string {
	return topic + "/" + strconv.Itoa(int(p)) + "/" + strconv.FormatInt(o, 10)
}

// settle gives each partition and handler its lag in time and its state,
// from born (the timestamps of the oldest unconsumed records) and what
// the tracker remembers, and records the sample in the history.
func (t *tracker) settle(ls []HandlerLag, born map[string]time.Time, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forget(ls)
	for i := range ls {
		l := &ls[i]
		stalled, lagging := false, false
		for j := range l.Partitions {
			p := &l.Partitions[j]
			l.Lag += p.Lag
			key := l.ConsumerGroup + "/" + position(l.Topic, p.Partition, 0)
			pr, ok := t.progress[key]
			if !ok || pr.committed != p.Committed || p.Lag == 0 {
				pr = progress{group: l.ConsumerGroup, committed: p.Committed, since: now}
				t.progress[key] = pr
			}
			p.SinceProgress = now.Sub(pr.since).Seconds()
			pos := max(p.Committed, p.Start)
			if ts, ok := born[position(l.Topic, p.Partition, pos)]; ok && p.Lag > 0 {
				p.LagSeconds = max(now.Sub(ts).Seconds(), 0)
			}
			l.LagSeconds = max(l.LagSeconds, p.LagSeconds)
			switch {
			case p.Lag == 0:
				p.State = StateIdle
			case now.Sub(pr.since) >= t.o.StallAfter:
				p.State, stalled = StateStalled, true
			default:
				p.State, lagging = StateConsuming, true
			}
		}
		l.Poisoned = len(t.poisoned[l.ConsumerGroup])
		switch {
		case l.GroupState == "PreparingRebalance" || l.GroupState == "CompletingRebalance":
			l.State = StateRebalancing
		case l.Poisoned > 0:
			l.State = StateFailing
		case stalled:
			l.State = StateStalled
		case lagging:
			l.State = StateConsuming
		default:
			l.State = StateIdle
		}
		h := append(t.history[l.ConsumerGroup], Point{At: now, Lag: l.Lag})
		if len(h) > t.o.History {
			h = h[len(h)-t.o.History:]
		}
		t.history[l.ConsumerGroup] = h
		l.History = slices.Clone(h)
	}
}

// forget drops what the tracker remembers of handlers no longer in the
// sample ls (their instances are gone), so that its memory follows the
// handlers that exist.
func (t *tracker) forget(ls []HandlerLag) {
	groups := make(map[string]bool, len(ls))
	for _, l := range ls {
		groups[l.ConsumerGroup] = true
	}
	for g := range t.history {
		if !groups[g] {
			delete(t.history, g)
		}
	}
	for key, pr := range t.progress {
		if !groups[pr.group] {
			delete(t.progress, key)
		}
	}
}
