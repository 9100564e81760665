package announcement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
)

// writeTimeout bounds one announcement's write (and the topic's creation);
// stopTimeout the last one, at stop, which must not hold the stop up.
const (
	writeTimeout = 5 * time.Second
	stopTimeout  = time.Second
)

// Announcer writes the announcements of one instance. Start it once, stop
// it once; it is safe for concurrent use.
type Announcer struct {
	base     Announcement
	interval time.Duration
	kafka    config.Kafka
	logger   *slog.Logger

	mu      sync.Mutex
	cl      *kgo.Client
	stop    chan struct{}
	done    chan struct{}
	failing bool // the last write failed (logged once until one succeeds)
}

// New returns the Announcer of an instance of service running hs, which
// poisons to poisonTopic, on a cluster reached as k says (TLS, SASL).
// interval 0 means DefaultInterval. It does no I/O.
func New(service, poisonTopic string, hs []Handler, k config.Kafka, interval time.Duration, logger *slog.Logger) *Announcer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if logger == nil {
		logger = slog.Default()
	}
	host, _ := os.Hostname()
	version, eventfx := versions()
	return &Announcer{
		base: Announcement{
			Service:        service,
			Instance:       instanceID(host),
			Version:        version,
			EventfxVersion: eventfx,
			Host:           host,
			PID:            os.Getpid(),
			Interval:       Duration(interval),
			PoisonTopic:    poisonTopic,
			Handlers:       hs,
		},
		interval: interval,
		kafka:    k,
		logger:   logger,
	}
}

// Start connects to brokers and announces the instance, then again every
// interval, in the background. It returns at once and fails only on
// connection settings it cannot use (as the service's own transport would
// have); a broker that does not answer is logged, not returned.
func (a *Announcer) Start(brokers []string) error {
	opts, err := kafka.ClientOpts(brokers, a.kafka, a.base.Service)
	if err != nil {
		return err
	}
	// Not idempotent: an idempotent record, once sent, is retried until
	// the broker takes it, whatever the context says, and could hold up
	// the service's stop; a heartbeat written twice is harmless.
	cl, err := kgo.NewClient(append(opts,
		kgo.RecordDeliveryTimeout(writeTimeout),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.AllowAutoTopicCreation(),
	)...)
	if err != nil {
		return fmt.Errorf("announcement client: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cl = cl
	a.base.StartedAt = time.Now().UTC()
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go a.loop(cl)
	return nil
}

// Stop stops the heartbeats and announces that the instance is stopping,
// within ctx (and a second at most). A failed write is logged.
func (a *Announcer) Stop(ctx context.Context) error {
	a.mu.Lock()
	cl, stop, done := a.cl, a.stop, a.done
	a.cl = nil
	a.mu.Unlock()
	if cl == nil {
		return nil
	}
	close(stop)
	sctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	// A heartbeat may be stuck on a broker that does not answer: Close
	// fails it.
	select {
	case <-done:
		a.write(sctx, cl, StateStopping)
	case <-sctx.Done():
	}
	cl.Close()
	return nil
}

func (a *Announcer) loop(cl *kgo.Client) {
	defer close(a.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-a.stop
		cancel()
	}()
	a.ensureTopic(ctx, cl)
	a.write(ctx, cl, StateRunning)
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.write(ctx, cl, StateRunning)
		}
	}
}

// ensureTopic creates Topic, compacted, with one partition, unless it
// exists. A failure is logged: the first write may then create it as the
// broker's default topic.
func (a *Announcer) ensureTopic(ctx context.Context, cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	compact := "compact"
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, Topic)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, kerr.TopicAlreadyExists):
		// Made by someone else, perhaps by a client that created it on
		// first use, not compacted: it then keeps every heartbeat.
		if policy := cleanupPolicy(ctx, adm); policy != "" && !strings.Contains(policy, "compact") {
			a.logger.Warn("the announcements topic is not compacted: it keeps every heartbeat; set its cleanup.policy to compact", "topic", Topic, "cleanup_policy", policy)
		}
	default:
		a.logger.Warn("create the announcements topic", "topic", Topic, "error", err)
	}
}

// cleanupPolicy is Topic's cleanup.policy, "" when it cannot be read.
func cleanupPolicy(ctx context.Context, adm *kadm.Client) string {
	rs, err := adm.DescribeTopicConfigs(ctx, Topic)
	if err != nil {
		return ""
	}
	r, err := rs.On(Topic, nil)
	if err != nil {
		return ""
	}
	for _, c := range r.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// write writes one announcement with state; it logs the first failure
// and the recovery, not every failed heartbeat.
func (a *Announcer) write(ctx context.Context, cl *kgo.Client, state string) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	rec := a.base
	rec.State = state
	rec.Heartbeat = time.Now().UTC()
	err := cl.ProduceSync(ctx, rec.Record()).FirstErr()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)):
		// The instance is stopping: not a failure.
	case err != nil && !a.failing:
		a.failing = true
		a.logger.Warn("announce the instance (the service runs on; the console does not see it)", "topic", Topic, "instance", rec.Instance, "error", err)
	case err == nil && a.failing:
		a.failing = false
		a.logger.Info("announcing the instance again", "topic", Topic, "instance", rec.Instance)
	}
}

// instanceID is "<host>-<pid>-<4 random bytes in hex>".
func instanceID(host string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	if host == "" {
		host = "host"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// versions are the main module's version and eventfx's, from the build
// information ("(devel)" when the build does not say).
func versions() (main, eventfx string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)", ""
	}
	main = bi.Main.Version
	if bi.Main.Path == "github.com/eventfx/eventfx" {
		eventfx = main
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/eventfx/eventfx" {
			eventfx = d.Version
		}
	}
	if main == "" {
		main = "(devel)"
	}
	return main, eventfx
}
