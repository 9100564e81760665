// Package console is eventfx's web console: HTML views and a JSON API over
// a running system, read from Kafka alone. The services announce
// themselves on eventfx.services (internal/announcement); the console
// draws them as a topology, follows every handler's consumer group (lag
// per partition, in messages and in time, and a state), shows the poison
// queue's failure groups and replays them through internal/poison (its
// ledger: never a record twice), browses topics, and follows a
// correlation ID across topics.
//
// Every read is bounded: no request reads a whole topic except the poison
// topic and its ledger, which poison stats and replay read too.
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/poison"
)

// Defaults of Options.
const (
	DefaultSampleEvery = 5 * time.Second
	DefaultHistory     = 60 // samples: 5 minutes at DefaultSampleEvery
	DefaultStallAfter  = 30 * time.Second
	DefaultFailWindow  = 2 * time.Minute
	DefaultAgeOut      = 5 * time.Minute
)

// Options configure a Console. Zero values mean the defaults.
type Options struct {
	// Client reaches the cluster. Required; the caller closes it after the
	// Console.
	Client *poison.Client
	// PoisonTopic is the poison topic the poison views read and replay.
	// Default config.DefaultPoisonTopic.
	PoisonTopic string
	// Token, when set, is required (Authorization: Bearer) by every
	// request that changes something. Default "": none.
	Token string
	// ReadOnly refuses every request that changes something (403).
	ReadOnly bool
	// SampleEvery is how often the console reads the announcements, the
	// consumer groups' offsets and the poison topic's new records.
	// Default DefaultSampleEvery (5s).
	SampleEvery time.Duration
	// History is how many samples each handler's sparkline keeps. Default
	// DefaultHistory (60).
	History int
	// StallAfter is how long a partition may lag with no commit progress
	// before it is stalled. Default DefaultStallAfter (30s).
	StallAfter time.Duration
	// FailWindow is how far back a poisoned message makes its handler
	// failing. Default DefaultFailWindow (2m).
	FailWindow time.Duration
	// AgeOut is how long an instance that stopped, or stopped
	// heartbeating, stays in the topology. Default DefaultAgeOut (5m).
	AgeOut time.Duration
	// Decode, when set, decodes Schema-Registry-framed payloads for the
	// views (schema.Registry's DecodeJSON): a payload it decodes is shown
	// as its JSON with its schema ID, one it cannot as it is with the
	// reason. Default nil: payloads are shown as they are.
	Decode func(payload []byte) (schemaID int, value []byte, err error)
	// Logger logs the sampler's failures. Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.PoisonTopic == "" {
		o.PoisonTopic = config.DefaultPoisonTopic
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = DefaultSampleEvery
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.StallAfter <= 0 {
		o.StallAfter = DefaultStallAfter
	}
	if o.FailWindow <= 0 {
		o.FailWindow = DefaultFailWindow
	}
	if o.AgeOut <= 0 {
		o.AgeOut = DefaultAgeOut
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Console serves the views and the API. Start its sampler with Run.
type Console struct {
	o     Options
	cl    *kgo.Client // admin requests and bounded reads
	adm   *kadm.Client
	views *views

	mu      sync.Mutex
	snap    snapshot
	tracker *tracker

	replaying sync.Mutex // one replay at a time
}

// New returns a Console. It does no I/O.
func New(o Options) (*Console, error) {
	if o.Client == nil {
		return nil, errors.New("console: no Kafka client")
	}
	o = o.withDefaults()
	if err := config.ValidTopicName(o.PoisonTopic); err != nil {
		return nil, fmt.Errorf("console: poison topic: %w", err)
	}
	cl, err := o.Client.NewKafkaClient(kgo.MetadataMinAge(250 * time.Millisecond))
	if err != nil {
		return nil, err
	}
	v, err := newViews()
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &Console{
		o:       o,
		cl:      cl,
		adm:     kadm.NewClient(cl),
		views:   v,
		tracker: newTracker(o),
	}, nil
}

// Close closes the Console's connections.
func (c *Console) Close() { c.cl.Close() }

// Run samples the cluster every SampleEvery until ctx is done. A failed
// sample is logged; the views then show the last good one.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.o.SampleEvery)
	defer t.Stop()
	for {
		c.sampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Console) sampleOnce(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 2*c.o.SampleEvery+5*time.Second)
	defer cancel()
	s, err := c.sample(sctx, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			c.o.Logger.Warn("console sample", "error", err)
		}
		return
	}
	c.mu.Lock()
	c.snap = s
	c.mu.Unlock()
}

// current is the latest snapshot.
func (c *Console) current() snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// Serve serves the console on l until ctx is done, then shuts the server
// down (in-flight requests get 5 seconds).
func (c *Console) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: c.Handler(l.Addr().String()), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// orEmpty is s, or an empty slice when s is nil (JSON [] rather than null).
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
