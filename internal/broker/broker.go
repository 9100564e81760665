// Package broker runs an embedded Kafka-protocol broker (franz-go's kfake):
// the zero-setup default of every example and test, and `eventfx broker`.
// It is a development broker, not a production cluster.
package broker

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures an embedded broker. Zero values take the defaults.
type Config struct {
	// Addr is the listen address. Default "127.0.0.1:0" (a free port).
	Addr string
	// DataDir, when set, persists topics, offsets and groups there, so data
	// survives a restart with the same directory. Empty = in memory.
	DataDir string
	// SyncWrites fsyncs every produce batch (durable, slower). Without it a
	// crash of the broker process may lose the last writes; a clean Close
	// does not.
	SyncWrites bool
	// Partitions is the partition count of auto-created topics. Default 8.
	Partitions int
}

// DefaultPartitions is the partition count of auto-created topics.
const DefaultPartitions = 8

// Broker is a running embedded broker. Topics are created on first use.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Start starts a broker.
func Start(cfg Config) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	addr := cfg.Addr
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		// Let tests and local runs use short session timeouts.
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, fmt.Errorf("start embedded broker on %s: no listener", cfg.Addr)
	}
	return &Broker{cluster: c, addr: addrs[0]}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, saving its state when it has a DataDir. It is
// idempotent.
func (b *Broker) Close() { b.cluster.Close() }

// The process's shared embedded broker: every app of one process whose
// config says "embedded" talks to the same broker, as they would to one
// cluster. It starts with the first user and stops with the last.
var shared struct {
	mu    sync.Mutex
	b     *Broker
	users int
}

// Acquire returns the process's shared embedded broker, starting it if no
// one uses it, and a release function to call once done with it.
func Acquire() (*Broker, func(), error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b == nil {
		b, err := Start(Config{})
		if err != nil {
			return nil, nil, err
		}
		shared.b = b
	}
	shared.users++
	var once sync.Once
	release := func() {
		once.Do(func() {
			shared.mu.Lock()
			defer shared.mu.Unlock()
			shared.users--
			if shared.users == 0 {
				shared.b.Close()
				shared.b = nil
			}
		})
	}
	return shared.b, release, nil
}
