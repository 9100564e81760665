package keyorder

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of the Config fields left zero, and the kgo settings the
// subscriber chooses.
const (
	DefaultMaxInFlight    = 256
	DefaultMaxOutstanding = 10000
	// DefaultPartitionWindow is twice DefaultMaxOutstanding: in a healthy
	// keyed stream the keys of a partition drift apart, and the records
	// done behind its slowest key reach about MaxOutstanding (a limit of
	// 5000 paused every partition of a 200,000-record backlog, throttling
	// it). Done records are small (their kgo.Record is dropped).
	DefaultPartitionWindow = 2 * DefaultMaxOutstanding
	DefaultCommitInterval  = time.Second
	DefaultRevokeDrain     = 10 * time.Second
	// DefaultNackResendSleep is watermill-kafka's.
	DefaultNackResendSleep = 100 * time.Millisecond
	// DefaultFetchMaxWait is the kgo.FetchMaxWait the subscriber sets
	// (Config.Opts may override it): pausing a partition drops its
	// buffered fetches, and a resumed partition waits up to this long for
	// data; kgo's default (5 s) makes it idle for seconds.
	DefaultFetchMaxWait = 500 * time.Millisecond
	// kgoRebalanceTimeout is kgo's default RebalanceTimeout.
	kgoRebalanceTimeout = 60 * time.Second
	// commitTimeout bounds one synchronous offset commit.
	commitTimeout = 10 * time.Second
)

// Config configures a Subscriber. Zero values take the defaults.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Group is the consumer group. Required.
	Group string
	// Opts are extra kgo client options, optional: TLS and SASL
	// (kafkaconn.Security), ClientID, kgo.AllowAutoTopicCreation, ... The
	// options that make the subscriber work (group, topic, commits,
	// rebalance callbacks) are applied after them and win.
	Opts []kgo.Opt
	// ResetOffset is where a partition starts when the group has no
	// commit for it. Zero (kgo.Offset{}) means the start of the
	// partition, kgo.NewOffset().AtStart().
	ResetOffset kgo.Offset
	// MaxInFlight bounds the messages handed to the output channel and
	// not yet acked or nacked. Default DefaultMaxInFlight.
	MaxInFlight int
	// MaxOutstanding bounds the records polled and not yet done: polling
	// stops at it and resumes at 75 % of it. Default
	// DefaultMaxOutstanding.
	MaxOutstanding int
	// PartitionWindow bounds a partition's window, the records polled
	// from its first one not done: fetching the partition is paused once
	// PartitionWindow of them are done but held behind that first one,
	// and resumed at 75 % of it. A key that keeps failing thus stalls only
	// its partition and does not fill memory: a window holds at most
	// PartitionWindow + MaxOutstanding records. Default
	// DefaultPartitionWindow.
	PartitionWindow int
	// CommitInterval is the period of the synchronous commit of every
	// partition's done prefix and done-set; it bounds what a crash
	// redelivers. Default DefaultCommitInterval.
	CommitInterval time.Duration
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout are the
	// group's timings. Zero keeps kgo's defaults (45 s, 3 s, 60 s).
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration
	// RevokeDrain bounds how long a revoked partition may go on handing
	// out its queued records below the fence and wait for their acks, and
	// how long Close waits for in-flight messages. It must be shorter than
	// RebalanceTimeout. Default DefaultRevokeDrain.
	RevokeDrain time.Duration
	// NackResendSleep is the pause before a nacked record is sent again.
	// Default DefaultNackResendSleep.
	NackResendSleep time.Duration
	// Unmarshal turns a record into a message. Required; it must return
	// a message (the wire format is the caller's, so it cannot fail
	// here: a record it cannot read is a message for the handler to
	// reject). It is called when a polled record is filed, and again for
	// each resend of a nacked record.
	Unmarshal func(*kgo.Record) *message.Message
	// Logger receives the subscriber's logs. Nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ResetOffset == (kgo.Offset{}) {
		c.ResetOffset = kgo.NewOffset().AtStart()
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxOutstanding == 0 {
		c.MaxOutstanding = DefaultMaxOutstanding
	}
	if c.PartitionWindow == 0 {
		c.PartitionWindow = DefaultPartitionWindow
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.RevokeDrain == 0 {
		c.RevokeDrain = DefaultRevokeDrain
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = DefaultNackResendSleep
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every invalid field of c, each named, as New would use
// it: zero values take their defaults first.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers: required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("Group: required"))
	}
	if c.Unmarshal == nil {
		errs = append(errs, errors.New("Unmarshal: required"))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxInFlight", c.MaxInFlight}, {"MaxOutstanding", c.MaxOutstanding}, {"PartitionWindow", c.PartitionWindow}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"CommitInterval", c.CommitInterval}, {"SessionTimeout", c.SessionTimeout}, {"HeartbeatInterval", c.HeartbeatInterval},
		{"RebalanceTimeout", c.RebalanceTimeout}, {"RevokeDrain", c.RevokeDrain}, {"NackResendSleep", c.NackResendSleep},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative", f.name, f.v))
		}
	}
	rebalance := c.RebalanceTimeout
	if rebalance == 0 {
		rebalance = kgoRebalanceTimeout
	}
	if c.RevokeDrain >= rebalance {
		// A member still draining when the rebalance times out is
		// kicked from the group and loses its partitions uncommitted.
		errs = append(errs, fmt.Errorf("RevokeDrain: %s must be shorter than RebalanceTimeout (%s)", c.RevokeDrain, rebalance))
	}
	return errors.Join(errs...)
}
