package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/announcement"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

// Bounds of the reads a request may ask for.
const (
	defaultLimit = 50
	maxLimit     = 500
	// defaultScan and maxScan bound the records read per partition when
	// filtering (messages) or searching (conversations).
	defaultScan = 10000
	maxScan     = 100000
	// maxConversationScan bounds the records a conversation search reads
	// over every topic; each partition is searched at least
	// minConversationWindow records deep.
	maxConversationScan   = 400000
	minConversationWindow = 100
	// maxReplayListed bounds the messages a replay's answer lists.
	maxReplayListed = 1000
)

// TopologyAnswer is the answer of GET /api/topology.
type TopologyAnswer struct {
	SampledAt time.Time `json:"sampled_at"`
	Topology
}

func (c *Console) apiTopology(w http.ResponseWriter, r *http.Request) {
	s := c.current()
	writeJSON(w, http.StatusOK, TopologyAnswer{SampledAt: s.at, Topology: s.topologyOrEmpty()})
}

func (s snapshot) topologyOrEmpty() Topology {
	if s.topology.Services == nil {
		return Topology{Services: []Service{}, Topics: []TopicRef{}}
	}
	return s.topology
}

func (c *Console) apiLag(w http.ResponseWriter, r *http.Request) {
	s := c.current()
	writeJSON(w, http.StatusOK, Lag{SampledAt: s.at, Handlers: orEmpty(s.lag)})
}

// PoisonGroup is a failure group (poison.Group) as the API shows it.
type PoisonGroup struct {
	Group       string   `json:"group"`
	Topic       string   `json:"topic"`
	Handler     string   `json:"handler"`
	Fingerprint string   `json:"fingerprint"`
	Reason      string   `json:"reason"`
	Services    []string `json:"services"`
	Count       int      `json:"count"`
	// AlreadyReplayed of Count were replayed; Pending were not.
	AlreadyReplayed int       `json:"already_replayed"`
	Pending         int       `json:"pending"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
}

func newPoisonGroup(g poison.Group) PoisonGroup {
	return PoisonGroup{
		Group: g.ID, Topic: g.Topic, Handler: g.Handler, Fingerprint: g.Fingerprint, Reason: g.Example,
		Services: orEmpty(g.Services), Count: g.Count, AlreadyReplayed: g.AlreadyReplayed,
		Pending: g.Count - g.AlreadyReplayed, FirstSeen: g.FirstSeen, LastSeen: g.LastSeen,
	}
}

// PoisonGroups is the answer of GET /api/poison/groups.
type PoisonGroups struct {
	PoisonTopic string        `json:"poison_topic"`
	Groups      []PoisonGroup `json:"groups"`
}

func (c *Console) poisonGroups(ctx context.Context) (PoisonGroups, error) {
	gs, err := c.o.Client.Stats(ctx, c.o.PoisonTopic)
	if err != nil {
		return PoisonGroups{}, err
	}
	out := PoisonGroups{PoisonTopic: c.o.PoisonTopic, Groups: make([]PoisonGroup, len(gs))}
	for i, g := range gs {
		out.Groups[i] = newPoisonGroup(g)
	}
	return out, nil
}

func (c *Console) apiPoisonGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := c.poisonGroups(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, http.StatusOK, gs)
}

// PoisonMessage is one poisoned message of a group.
type PoisonMessage struct {
	// Message is the poison record (its headers include the poison ones).
	Message
	OriginalTopic     string    `json:"original_topic"`
	OriginalPartition int32     `json:"original_partition"`
	OriginalOffset    int64     `json:"original_offset"`
	Handler           string    `json:"handler"`
	ConsumerGroup     string    `json:"consumer_group"`
	Service           string    `json:"service"`
	Reason            string    `json:"reason"`
	Attempts          int       `json:"attempts"`
	PoisonedAt        time.Time `json:"poisoned_at"`
	AlreadyReplayed   bool      `json:"already_replayed"`
	Problems          []string  `json:"problems,omitempty"`
}

func newPoisonMessage(p poison.Record, dec decoder) PoisonMessage {
	m := newMessage(&kgo.Record{Topic: p.PoisonTopic, Partition: p.PoisonPartition, Offset: p.PoisonOffset, Timestamp: p.Timestamp, Key: p.Key, Value: p.Payload, Headers: p.Headers}, dec)
	m.ID = p.ID
	return PoisonMessage{
		Message: m, OriginalTopic: p.Topic, OriginalPartition: p.Partition, OriginalOffset: p.Offset,
		Handler: p.Handler, ConsumerGroup: p.ConsumerGroup, Service: p.Service, Reason: p.Reason, Attempts: p.Attempts,
		PoisonedAt: p.Seen().UTC(), AlreadyReplayed: p.AlreadyReplayed, Problems: p.Problems,
	}
}

// GroupMessages is the answer of GET /api/poison/groups/{group}/messages.
type GroupMessages struct {
	Group    PoisonGroup     `json:"group"`
	Messages []PoisonMessage `json:"messages"`
	// Truncated says whether the group has more messages than listed.
	Truncated bool `json:"truncated"`
}

// errNoGroup is the error of a group the poison topic does not hold.
var errNoGroup = errors.New("no such group")

func (c *Console) groupMessages(ctx context.Context, group string, limit int) (GroupMessages, error) {
	if err := poison.ValidGroupID(group); err != nil {
		return GroupMessages{}, err
	}
	recs, err := c.o.Client.List(ctx, c.o.PoisonTopic)
	if err != nil {
		return GroupMessages{}, err
	}
	var in []poison.Record
	for _, p := range recs {
		if p.GroupID() == group {
			in = append(in, p)
		}
	}
	gs := poison.GroupRecords(in)
	if len(gs) == 0 {
		return GroupMessages{}, fmt.Errorf("%w %s on %s", errNoGroup, group, c.o.PoisonTopic)
	}
	out := GroupMessages{Group: newPoisonGroup(gs[0]), Messages: []PoisonMessage{}}
	// The newest first.
	slices.Reverse(in)
	for _, p := range in {
		if len(out.Messages) == limit {
			out.Truncated = true
			break
		}
		out.Messages = append(out.Messages, newPoisonMessage(p, c.o.Decode))
	}
	return out, nil
}

func (c *Console) apiGroupMessages(w http.ResponseWriter, r *http.Request) {
	q := query{r: r}
	limit := q.int("limit", defaultLimit, 1, maxLimit)
	if q.err != nil {
		writeError(w, http.StatusBadRequest, q.err)
		return
	}
	gm, err := c.groupMessages(r.Context(), r.PathValue("group"), limit)
	switch {
	case errors.Is(err, errNoGroup):
		writeError(w, http.StatusNotFound, err)
	case err != nil && poison.ValidGroupID(r.PathValue("group")) != nil:
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		writeError(w, http.StatusBadGateway, err)
	default:
		writeJSON(w, http.StatusOK, gm)
	}
}

// ReplayRequest is the body of POST /api/poison/replay: a group, message
// IDs, or both (a message must then match both).
type ReplayRequest struct {
	Group  string   `json:"group"`
	IDs    []string `json:"ids"`
	DryRun bool     `json:"dry_run"`
	// By names who asks; the ledger records it with the console's
	// address and the caller's.
	By string `json:"by"`
}

// ReplayAnswer is what a replay did (or, dry, would do).
type ReplayAnswer struct {
	DryRun          bool   `json:"dry_run"`
	By              string `json:"by"`
	Replayed        int    `json:"replayed"`
	AlreadyReplayed int    `json:"already_replayed"`
	Filtered        int    `json:"filtered"`
	Unreplayable    int    `json:"unreplayable"`
	Failed          int    `json:"failed"`
	NotRecorded     int    `json:"not_recorded"`
	// Summary is the line `eventfx poison replay` prints.
	Summary string `json:"summary"`
	// Messages are the records replayed (or that would be), as
	// republished: topic, key, headers, payload; for a real replay with
	// their partition and offset.
	Messages  []ReplayedMessage `json:"messages"`
	Truncated bool              `json:"truncated"`
	Error     string            `json:"error,omitempty"`
}

// ReplayedMessage is one record of a replay.
type ReplayedMessage struct {
	Action string `json:"action"`
	// Message is the record republished (or that would be); Partition
	// and Offset are -1 when it was not written.
	Message
	// PoisonPartition and PoisonOffset locate its poison record.
	PoisonPartition int32  `json:"poison_partition"`
	PoisonOffset    int64  `json:"poison_offset"`
	Error           string `json:"error,omitempty"`
}

func (c *Console) apiReplay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	var errs []error
	if req.Group == "" && len(req.IDs) == 0 {
		errs = append(errs, errors.New("give a group, message ids, or both"))
	}
	if req.Group != "" {
		if err := poison.ValidGroupID(req.Group); err != nil {
			errs = append(errs, fmt.Errorf("group: %w", err))
		}
	}
	for i, id := range req.IDs {
		if id == "" {
			errs = append(errs, fmt.Errorf("ids[%d]: empty", i))
		}
	}
	if len(req.By) > 200 {
		errs = append(errs, errors.New("by: longer than 200 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if !c.replaying.TryLock() {
		writeError(w, http.StatusConflict, errors.New("a replay is running; try again when it is done"))
		return
	}
	defer c.replaying.Unlock()
	by := cmp.Or(strings.TrimSpace(req.By), "console user") + " via eventfx console from " + remoteHost(r)
	ans := ReplayAnswer{DryRun: req.DryRun, By: by, Messages: []ReplayedMessage{}}
	o := poison.ReplayOptions{Topic: c.o.PoisonTopic, Group: req.Group, IDs: req.IDs, DryRun: req.DryRun, By: by}
	if len(req.IDs) == 0 {
		o.IDs = nil
	}
	// With Accept: application/x-ndjson, the answer is a stream: a
	// {"progress": …} line per record as it is handled, then
	// {"result": <the answer>}.
	stream := r.Header.Get("Accept") == ndjson
	var enc *json.Encoder
	rc := http.NewResponseController(w)
	done := 0
	if stream {
		w.Header().Set("Content-Type", ndjson)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		enc = json.NewEncoder(w)
	}
	o.Report = func(res poison.ReplayResult) error {
		done++
		if stream {
			if err := enc.Encode(map[string]ReplayProgress{"progress": {Done: done, Action: res.Action.String(), ID: res.Record.ID}}); err != nil {
				return fmt.Errorf("the caller left: %w", err)
			}
			_ = rc.Flush()
		}
		if len(ans.Messages) == maxReplayListed {
			ans.Truncated = true
			return nil
		}
		ans.Messages = append(ans.Messages, replayedMessage(res, c.o.Decode))
		return nil
	}
	sum, err := c.o.Client.Replay(r.Context(), o)
	ans.Replayed, ans.AlreadyReplayed, ans.Filtered = sum.Replayed, sum.AlreadyReplayed, sum.Filtered
	ans.Unreplayable, ans.Failed, ans.NotRecorded = sum.Unreplayable, sum.Failed, sum.NotRecorded
	ans.Summary = sum.String()
	status := http.StatusOK
	if err != nil {
		ans.Error = err.Error()
		if _, incomplete := errors.AsType[*poison.IncompleteError](err); !incomplete {
			status = http.StatusBadGateway
		}
	}
	if stream {
		_ = enc.Encode(map[string]ReplayAnswer{"result": ans})
		return
	}
	writeJSON(w, status, ans)
}

// ndjson is the media type of a replay's progress stream.
const ndjson = "application/x-ndjson"

// ReplayProgress is a line of a replay's progress stream: how many
// records were handled so far, and the last one.
type ReplayProgress struct {
	Done   int    `json:"done"`
	Action string `json:"action"`
	ID     string `json:"id"`
}

func replayedMessage(res poison.ReplayResult, dec decoder) ReplayedMessage {
	out := ReplayedMessage{Action: res.Action.String(), PoisonPartition: res.Record.PoisonPartition, PoisonOffset: res.Record.PoisonOffset}
	rec := res.Replay
	if rec == nil {
		rec, _ = res.Record.ReplayRecord()
	}
	if rec != nil {
		if res.Replay == nil {
			rec.Partition, rec.Offset = -1, -1
		}
		out.Message = newMessage(rec, dec)
	} else {
		out.Message = Message{Topic: res.Record.Topic, Partition: -1, Offset: -1, ID: res.Record.ID, Headers: []Header{}}
	}
	if res.Err != nil {
		out.Error = res.Err.Error()
	}
	return out
}

// remoteHost is the host of the request's peer.
func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// Messages is the answer of GET /api/topics/{topic}/messages.
type Messages struct {
	Topic      string          `json:"topic"`
	Partitions []PartitionSpan `json:"partitions"`
	Messages   []Message       `json:"messages"`
	// Scanned counts the records read; Truncated says whether more
	// matched than Limit.
	Scanned   int  `json:"scanned"`
	Truncated bool `json:"truncated"`
}

// PartitionSpan is a partition's offsets: the first, the end, and where
// the read began.
type PartitionSpan struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
	From      int64 `json:"from"`
}

// browse is a request of the messages view or API.
type browse struct {
	topic         string
	partition     int32 // -1: every partition
	offset        int64 // -1: not given
	at            time.Time
	limit, scan   int
	key           string
	headerKey     string
	headerValue   string
	correlationID string
}

func (b browse) filtered() bool {
	return b.key != "" || b.headerKey != "" || b.correlationID != ""
}

func parseBrowse(r *http.Request, topic string) (browse, error) {
	q := query{r: r}
	b := browse{topic: topic, partition: -1, offset: -1}
	if err := config.ValidTopicName(topic); err != nil {
		q.fail(fmt.Errorf("topic: %w", err))
	}
	b.partition = int32(q.int("partition", -1, 0, 1<<31-1))
	b.offset = int64(q.int("offset", -1, 0, 1<<62))
	b.limit = q.int("limit", defaultLimit, 1, maxLimit)
	b.scan = q.int("scan", defaultScan, 1, maxScan)
	if v := r.URL.Query().Get("time"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			q.fail(fmt.Errorf("time: %q is not an RFC 3339 time (e.g. 2026-12-03T10:00:00Z)", v))
		}
		b.at = t
	}
	if b.offset >= 0 && !b.at.IsZero() {
		q.fail(errors.New("give offset or time, not both"))
	}
	b.key = r.URL.Query().Get("key")
	if h := r.URL.Query().Get("header"); h != "" {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			q.fail(fmt.Errorf("header: %q is not name=value", h))
		}
		if secretHeader(k) {
			// Its values are shown masked: no filter may guess them.
			q.fail(fmt.Errorf("header: %q holds a secret and cannot be filtered on", k))
		}
		b.headerKey, b.headerValue = k, v
	}
	b.correlationID = r.URL.Query().Get("correlation_id")
	return b, q.err
}

func (c *Console) messages(ctx context.Context, b browse) (Messages, error) {
	bounds, err := c.bounds(ctx, b.topic)
	if err != nil {
		return Messages{}, err
	}
	ps := bounds[b.topic]
	if ps == nil {
		return Messages{}, fmt.Errorf("%w: %s", errUnknownTopic, b.topic)
	}
	if b.partition >= 0 {
		if _, ok := ps[b.partition]; !ok {
			return Messages{}, fmt.Errorf("%w: %s has no partition %d", errBadRequest, b.topic, b.partition)
		}
		ps = map[int32]span{b.partition: ps[b.partition]}
	}
	window := int64(b.limit)
	if b.filtered() {
		window = int64(b.scan)
	}
	spans := map[int32]span{}
	var after map[int32]span
	if !b.at.IsZero() {
		if after, err = c.afterSpans(ctx, b.topic, b.at, window); err != nil {
			return Messages{}, err
		}
	}
	out := Messages{Topic: b.topic, Partitions: []PartitionSpan{}, Messages: []Message{}}
	newest := b.offset < 0 && b.at.IsZero()
	for p, s := range ps {
		read := s
		switch {
		case b.offset >= 0:
			read.from = min(max(b.offset, s.from), s.to)
			read.to = min(s.to, read.from+window)
		case !b.at.IsZero():
			read = after[p]
		default:
			read.from = max(s.from, s.to-window)
		}
		spans[p] = read
		out.Partitions = append(out.Partitions, PartitionSpan{Partition: p, Start: s.from, End: s.to, From: read.from})
	}
	slices.SortFunc(out.Partitions, func(a, b PartitionSpan) int { return cmp.Compare(a.Partition, b.Partition) })
	// At most 2×limit matches are held while scanning: past that, the
	// ones that cannot be shown (the oldest when showing the newest, else
	// the newest) are dropped.
	var recs []*kgo.Record
	keep := func() {
		slices.SortFunc(recs, func(x, y *kgo.Record) int {
			return cmp.Or(x.Timestamp.Compare(y.Timestamp), cmp.Compare(x.Partition, y.Partition), cmp.Compare(x.Offset, y.Offset))
		})
		if len(recs) > b.limit {
			out.Truncated = true
			if newest {
				recs = slices.Clone(recs[len(recs)-b.limit:])
			} else {
				recs = slices.Clone(recs[:b.limit])
			}
		}
	}
	err = c.scan(ctx, map[string]map[int32]span{b.topic: spans}, func(r *kgo.Record) bool {
		out.Scanned++
		if b.matches(r) {
			recs = append(recs, r)
			if len(recs) >= 2*b.limit {
				keep()
			}
		}
		return true
	})
	if err != nil {
		return Messages{}, err
	}
	keep()
	for _, r := range recs {
		out.Messages = append(out.Messages, newMessage(r, c.o.Decode))
	}
	return out, nil
}

func (b browse) matches(r *kgo.Record) bool {
	if b.key != "" && string(r.Key) != b.key {
		return false
	}
	if b.headerKey == "" && b.correlationID == "" {
		return true
	}
	header, corr := b.headerKey == "", b.correlationID == ""
	for _, h := range r.Headers {
		if !header && h.Key == b.headerKey && string(h.Value) == b.headerValue {
			header = true
		}
		if !corr && h.Key == meta.CorrelationID && string(h.Value) == b.correlationID {
			corr = true
		}
	}
	return header && corr
}

var errBadRequest = errors.New("bad request")

func (c *Console) apiMessages(w http.ResponseWriter, r *http.Request) {
	b, err := parseBrowse(r, r.PathValue("topic"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ms, err := c.messages(r.Context(), b)
	switch {
	case errors.Is(err, errUnknownTopic):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, errBadRequest):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		writeError(w, http.StatusBadGateway, err)
	default:
		writeJSON(w, http.StatusOK, ms)
	}
}

// TopicList is the answer of GET /api/topics.
type TopicList struct {
	Topics []TopicInfo `json:"topics"`
}

// TopicInfo is a topic and its size.
type TopicInfo struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Records    int64  `json:"records"`
}

func (c *Console) topics(ctx context.Context) (TopicList, error) {
	ts, err := c.adm.ListTopics(ctx)
	if err != nil {
		return TopicList{}, fmt.Errorf("list topics: %w", err)
	}
	names := ts.Names()
	out := TopicList{Topics: []TopicInfo{}}
	if len(names) == 0 {
		return out, nil
	}
	b, err := c.bounds(ctx, names...)
	if err != nil {
		return TopicList{}, err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "__") {
			continue
		}
		ti := TopicInfo{Name: n, Partitions: len(b[n])}
		for _, s := range b[n] {
			ti.Records += s.to - s.from
		}
		out.Topics = append(out.Topics, ti)
	}
	slices.SortFunc(out.Topics, func(a, b TopicInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func (c *Console) apiTopics(w http.ResponseWriter, r *http.Request) {
	ts, err := c.topics(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

// Conversation is the answer of GET /api/conversations/{correlation_id}.
type Conversation struct {
	CorrelationID string `json:"correlation_id"`
	// Entries are the conversation's records on every topic, in time
	// order.
	Entries []Entry `json:"entries"`
	// Topics are those searched, Scanned the records read; each
	// partition was searched over at most Window records (the scan
	// parameter, less in a cluster of many partitions: at most 400,000
	// records in all).
	Topics  []string `json:"topics"`
	Scanned int      `json:"scanned"`
	Window  int      `json:"window"`
}

// Entry is one record of a conversation.
type Entry struct {
	// Kind is "event", "replayed" (a replay of a poisoned message) or
	// "poisoned" (a poison record).
	Kind string `json:"kind"`
	Message
	// Handler is the handler that poisoned it (for a poison record), or
	// the handlers that emit to its topic ("<service>.<handler>").
	Handler string   `json:"handler,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Emitted []string `json:"emitted_by,omitempty"`
	// ConsumedBy are the handlers consuming its topic.
	ConsumedBy []string `json:"consumed_by,omitempty"`
	// ReplayFor is, for a replayed record, the consumer group it is for:
	// the only one that handles it again.
	ReplayFor string `json:"replay_for,omitempty"`
}

// conversation finds the records whose correlation ID (or message ID) is
// id: around at when given, else among the latest records of every topic.
func (c *Console) conversation(ctx context.Context, id string, at time.Time, window int) (Conversation, error) {
	ts, err := c.adm.ListTopics(ctx)
	if err != nil {
		return Conversation{}, fmt.Errorf("list topics: %w", err)
	}
	var topics []string
	for _, n := range ts.Names() {
		if strings.HasPrefix(n, "__") || n == announcement.Topic || strings.HasSuffix(n, poison.LedgerSuffix) {
			continue
		}
		topics = append(topics, n)
	}
	slices.Sort(topics)
	// A cluster of many topics is searched less deep in each, so that a
	// search never reads more than maxConversationScan records.
	partitions := 0
	for _, t := range topics {
		partitions += len(ts[t].Partitions)
	}
	if partitions > 0 {
		window = min(window, max(minConversationWindow, maxConversationScan/partitions))
	}
	out := Conversation{CorrelationID: id, Entries: []Entry{}, Topics: orEmpty(topics), Window: window}
	spans := map[string]map[int32]span{}
	for _, t := range topics {
		var s map[int32]span
		if at.IsZero() {
			s, err = c.tailSpans(ctx, t, int64(window))
		} else {
			s, err = c.afterSpans(ctx, t, at.Add(-time.Hour), int64(window))
		}
		if err != nil {
			return Conversation{}, err
		}
		spans[t] = s
	}
	var recs []*kgo.Record
	byID := ""
	err = c.scan(ctx, spans, func(r *kgo.Record) bool {
		out.Scanned++
		for _, h := range r.Headers {
			if (h.Key == meta.CorrelationID || h.Key == poison.IDHeader) && string(h.Value) == id {
				recs = append(recs, r)
				if h.Key == poison.IDHeader {
					byID = headerValue(r, meta.CorrelationID)
				}
				return true
			}
		}
		return true
	})
	if err != nil {
		return Conversation{}, err
	}
	if byID != "" && byID != id {
		// id was a message ID: the conversation is its correlation ID's.
		return c.conversation(ctx, byID, at, window)
	}
	top := c.current().topologyOrEmpty()
	for _, r := range recs {
		out.Entries = append(out.Entries, newEntry(r, top, c.o.Decode))
	}
	slices.SortFunc(out.Entries, func(a, b Entry) int {
		return cmp.Or(a.Timestamp.Compare(b.Timestamp), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out, nil
}

func headerValue(r *kgo.Record, key string) string {
	v := ""
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}

func newEntry(r *kgo.Record, top Topology, dec decoder) Entry {
	e := Entry{Kind: "event", Message: newMessage(r, dec)}
	if reason := headerValue(r, meta.ReasonPoisoned); reason != "" {
		p := poison.Parse(r)
		e.Kind, e.Handler, e.Reason = "poisoned", p.Handler, p.Reason
		return e
	}
	if headerValue(r, meta.Replayed) != "" {
		e.Kind = "replayed"
		e.ReplayFor = headerValue(r, meta.ReplayFor)
	}
	for _, t := range top.Topics {
		if t.Name == r.Topic {
			e.Emitted, e.ConsumedBy = t.PublishedBy, t.ConsumedBy
		}
	}
	if e.ReplayFor != "" {
		e.Emitted, e.ConsumedBy = nil, nil // a replay, for one handler
	}
	return e
}

func (c *Console) apiConversation(w http.ResponseWriter, r *http.Request) {
	id, at, window, err := parseConversation(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	conv, err := c.conversation(r.Context(), id, at, window)
	if err != nil {
		writeError(w, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, http.StatusOK, conv)
}

func parseConversation(r *http.Request) (string, time.Time, int, error) {
	q := query{r: r}
	id := r.PathValue("correlation_id")
	if id == "" {
		q.fail(errors.New("correlation_id: empty"))
	}
	window := q.int("scan", defaultScan, 1, maxScan)
	var at time.Time
	if v := r.URL.Query().Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			q.fail(fmt.Errorf("at: %q is not an RFC 3339 time", v))
		}
		at = t
	}
	return id, at, window, q.err
}

// query reads query parameters, collecting every bad one.
type query struct {
	r   *http.Request
	err error
}

func (q *query) fail(err error) { q.err = errors.Join(q.err, err) }

// int is parameter name, def when absent; it must be in [lo, hi].
func (q *query) int(name string, def, lo, hi int) int {
	v := q.r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		q.fail(fmt.Errorf("%s: %q is not an integer from %d to %d", name, v, lo, hi))
		return def
	}
	return n
}

// writeJSON writes v as the answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError writes {"error": "..."}.
func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": strings.ReplaceAll(err.Error(), "\n", "; ")})
}
