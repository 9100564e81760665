package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
)

// DefaultLagTimeout bounds one collection of the consumer lag.
const DefaultLagTimeout = 3 * time.Second

// LagConfig configures a Lag collector.
type LagConfig struct {
	// Brokers returns the bootstrap brokers (or use SetBrokers). It is
	// called at the first collection (a transport knows its brokers once
	// started); while it is nil or returns none (the in-memory transport),
	// nothing is collected.
	Brokers func() []string
	// Kafka gives InitialOffset (where a group without a committed offset
	// starts).
	Kafka config.Kafka
	// Connect returns the options of a client of brokers: client ID, TLS
	// and SASL, as for the transport (kafka.ClientOpts). Default: the
	// brokers alone, client ID "eventfx-metrics".
	Connect func(brokers []string) ([]kgo.Opt, error)
	// Timeout bounds one collection. Default DefaultLagTimeout.
	Timeout time.Duration
	// Logger gets a debug line when a collection fails. Default: discard.
	Logger *slog.Logger
}

// Lag is the prometheus.Collector of eventfx_consumer_lag{group,topic,
// partition}: for each tracked consumer group and topic, how many messages
// of each partition are past the group's committed offset (the high-water
// mark minus the committed offset). A partition the group never committed
// counts from the log start offset when kafka.initial_offset is oldest,
// and as 0 when it is newest (the group would skip those messages).
//
// It asks the brokers at scrape time (end and start offsets, committed
// offsets of all groups: three requests), within the timeout; when they do
// not answer, the scrape has no lag series. Its Kafka client is created at
// the first collection and closed by Close. It is safe for concurrent use.
type Lag struct {
	cfg  LagConfig
	desc *prometheus.Desc

	mu      sync.Mutex
	brokers func() []string
	targets []target // sorted, unique
	client  *kgo.Client
	closed  bool
	missing []string // topics unknown at the last collection
}

type target struct{ group, topic string }

// NewLag returns a Lag collector; register it on a prometheus.Registerer.
// It does no I/O.
func NewLag(cfg LagConfig) *Lag {
	if cfg.Connect == nil {
		cfg.Connect = func(brokers []string) ([]kgo.Opt, error) {
			return []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("eventfx-metrics")}, nil
		}
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultLagTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Lag{
		cfg:     cfg,
		brokers: cfg.Brokers,
		desc: prometheus.NewDesc("eventfx_consumer_lag",
			"Messages behind the high-water mark: the partition's end offset minus the consumer group's committed offset.",
			[]string{"group", "topic", "partition"}, nil),
	}
}

// SetBrokers replaces LagConfig.Brokers, for a collector built before its
// transport. It takes effect unless a collection already connected.
func (l *Lag) SetBrokers(brokers func() []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.brokers = brokers
}

// Track adds a consumer group and the topic it consumes. Tracking a pair
// twice is harmless.
func (l *Lag) Track(group, topic string) {
	if group == "" || topic == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := target{group, topic}
	i, found := slices.BinarySearchFunc(l.targets, t, compareTargets)
	if !found {
		l.targets = slices.Insert(l.targets, i, t)
	}
}

func compareTargets(a, b target) int {
	return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.topic, b.topic))
}

// Describe implements prometheus.Collector.
func (l *Lag) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector.
func (l *Lag) Collect(ch chan<- prometheus.Metric) {
	targets, cl, missing := l.start()
	if cl == nil || len(targets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
	defer cancel()
	if len(missing) > 0 {
		// The client caches metadata for a while: ask again about the
		// topics that did not exist last time.
		cl.PurgeTopicsFromClient(missing...)
	}
	lags, missing, err := l.lags(ctx, kadm.NewClient(cl), targets)
	l.mu.Lock()
	l.missing = missing
	l.mu.Unlock()
	if err != nil {
		l.cfg.Logger.Debug("consumer lag incomplete", "error", err)
	}
	for _, p := range lags {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(p.lag),
			p.group, p.topic, strconv.FormatInt(int64(p.partition), 10))
	}
}

// start snapshots the targets and returns the client, creating it if
// needed; the client is nil when closed or when there are no brokers.
func (l *Lag) start() ([]target, *kgo.Client, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.targets) == 0 {
		return nil, nil, nil
	}
	if l.client == nil {
		if l.brokers == nil {
			return nil, nil, nil
		}
		brokers := l.brokers()
		if len(brokers) == 0 {
			return nil, nil, nil
		}
		opts, err := clientOpts(brokers, l.cfg)
		if err == nil {
			l.client, err = kgo.NewClient(opts...)
		}
		if err != nil {
			l.cfg.Logger.Debug("consumer lag: kafka client", "error", err)
			return nil, nil, nil
		}
	}
	return slices.Clone(l.targets), l.client, l.missing
}

type partitionLag struct {
	group, topic string
	partition    int32
	lag          int64
}

// lags computes the lag of every partition of the targets' topics. It
// returns what it could compute, the topics that do not exist, and the
// errors met.
func (l *Lag) lags(ctx context.Context, adm *kadm.Client, targets []target) ([]partitionLag, []string, error) {
	var groups, topics []string
	for _, t := range targets {
		groups = append(groups, t.group)
		topics = append(topics, t.topic)
	}
	slices.Sort(groups)
	groups = slices.Compact(groups)
	slices.Sort(topics)
	topics = slices.Compact(topics)

	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil && len(ends) == 0 {
		return nil, nil, fmt.Errorf("end offsets: %w", err)
	}
	errs := []error{err}
	var missing []string
	for _, t := range topics {
		if o, ok := ends.Lookup(t, -1); ok && errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, t)
		}
	}
	var starts kadm.ListedOffsets
	if l.cfg.Kafka.InitialOffset != config.OffsetNewest {
		starts, err = adm.ListStartOffsets(ctx, topics...)
		errs = append(errs, err)
	}
	commits := adm.FetchManyOffsets(ctx, groups...)

	var out []partitionLag
	for _, t := range targets {
		fetched, ok := commits[t.group]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("committed offsets of %s: no answer", t.group))
			continue
		case errors.Is(fetched.Err, kerr.GroupIDNotFound):
			// A group that never committed (some brokers say so, others
			// answer with no offsets).
		case fetched.Err != nil:
			errs = append(errs, fmt.Errorf("committed offsets of %s: %w", t.group, fetched.Err))
			continue
		}
		for p, end := range ends[t.topic] {
			if p < 0 || end.Err != nil {
				continue
			}
			committed := int64(-1)
			if c, ok := fetched.Fetched.Lookup(t.topic, p); ok && c.Err == nil {
				committed = c.At
			}
			lag, ok := partitionBehind(end.Offset, committed, starts, t.topic, p, l.cfg.Kafka.InitialOffset)
			if !ok {
				continue
			}
			out = append(out, partitionLag{group: t.group, topic: t.topic, partition: p, lag: lag})
		}
	}
	return out, missing, errors.Join(errs...)
}

// partitionBehind is how many messages of a partition ending at end are
// past committed (-1: nothing committed). ok is false when it cannot tell.
func partitionBehind(end, committed int64, starts kadm.ListedOffsets, topic string, p int32, initial string) (lag int64, ok bool) {
	switch {
	case committed >= 0:
		lag = end - committed
	case initial == config.OffsetNewest:
		lag = 0
	default:
		s, found := starts.Lookup(topic, p)
		if !found || s.Err != nil {
			return 0, false
		}
		lag = end - s.Offset
	}
	return max(lag, 0), true
}

// Close closes the Kafka client; later collections collect nothing.
func (l *Lag) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.client != nil {
		l.client.Close()
		l.client = nil
	}
}

// clientOpts are the options of the collector's client: the connection
// (LagConfig.Connect) and short timeouts (a scrape must not hang).
func clientOpts(brokers []string, c LagConfig) ([]kgo.Opt, error) {
	opts, err := c.Connect(brokers)
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.DialTimeout(c.Timeout), kgo.RetryTimeout(c.Timeout)), nil
}
