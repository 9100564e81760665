// Package broker runs an embedded Kafka-protocol broker (franz-go's kfake):
// the zero-setup default of every example and test, and `eventfx broker`.
// It is a development broker, not a production cluster.
package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventfx/eventfx/internal/refcount"
	"github.com/eventfx/eventfx/internal/registry"
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
	// TLS, when set, makes the broker accept TLS connections only (see
	// LoadTLS). With ClientCAs and ClientAuth set, clients must present a
	// certificate of those CAs.
	TLS *tls.Config
	// SASL, when not empty, makes the broker require SASL authentication
	// with one of these users, of every client Kafka authenticates
	// (librdkafka and kafka-python included: see front.go).
	SASL []SASLUser
	// SchemaRegistry, when set, is the listen address of a Confluent
	// Schema Registry REST API served beside the broker (internal/registry);
	// with DataDir its registrations survive a restart too.
	SchemaRegistry string
}

// SASL mechanisms the broker supports.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLUser is a user the broker accepts with one mechanism. Formatting it
// (String, %v, %+v, %#v) never shows the password.
type SASLUser struct {
	Mechanism string // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	User      string
	Password  string
}

// String is "MECHANISM:user", without the password.
func (u SASLUser) String() string { return u.Mechanism + ":" + u.User }

// GoString is String, so %#v does not print the password either.
func (u SASLUser) GoString() string { return u.String() }

// Format prints String for every verb, so %+v does not print the password either.
func (u SASLUser) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(u.String())) }

// ParseSASLUser parses "MECHANISM:USER:PASSWORD" (the password may contain
// ':'). Its errors never contain the password.
func ParseSASLUser(s string) (SASLUser, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return SASLUser{}, errors.New("want MECHANISM:USER:PASSWORD")
	}
	u := SASLUser{Mechanism: strings.ToUpper(strings.TrimSpace(parts[0])), User: parts[1], Password: parts[2]}
	if err := u.validate(); err != nil {
		return SASLUser{}, err
	}
	return u, nil
}

func (u SASLUser) validate() error {
	switch u.Mechanism {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("unknown SASL mechanism %q (want %s, %s or %s)", u.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if u.User == "" {
		return fmt.Errorf("%s: empty user name", u.Mechanism)
	}
	if u.Password == "" {
		return fmt.Errorf("%s user %q: empty password", u.Mechanism, u.User)
	}
	return nil
}

// TLSFiles names PEM files for a TLS listener.
type TLSFiles struct {
	CertFile, KeyFile string // the server's certificate (chain) and key
	ClientCAFile      string // optional: require client certificates of these CAs
}

// LoadTLS builds the server TLS config of f. Its errors name the file that
// is missing or bad.
func LoadTLS(f TLSFiles) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("a TLS listener needs both a certificate and a key file")
	}
	for _, file := range []string{f.CertFile, f.KeyFile} {
		if _, err := os.Stat(file); err != nil {
			return nil, err
		}
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.ClientCAFile != "" {
		pem, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", f.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// DefaultPartitions is the partition count of auto-created topics.
const DefaultPartitions = 8

// Broker is a running embedded broker. Topics are created on first use.
type Broker struct {
	cluster  *kfake.Cluster
	front    *front             // with SASL: the public listener; nil without
	registry *registry.Registry // nil without Config.SchemaRegistry
	addr     string
	unlock   func()
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
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		// Let tests and local runs use short session timeouts.
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	unlock := func() {}
	if cfg.DataDir != "" {
		// One broker per data dir: two would overwrite each other's state.
		var err error
		if unlock, err = lockDir(cfg.DataDir); err != nil {
			return nil, err
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	var fr *front
	if len(cfg.SASL) > 0 {
		for _, u := range cfg.SASL {
			if err := u.validate(); err != nil {
				unlock()
				return nil, fmt.Errorf("start embedded broker: %w", err)
			}
			opts = append(opts, kfake.Superuser(u.Mechanism, u.User, u.Password))
		}
		// The SASL front listens (and terminates TLS) in kfake's stead, so
		// that every client Kafka authenticates authenticates (front.go).
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Addr, err)
		}
		fr = newFront(ln, cfg.TLS, cfg.SASL)
		opts = append(opts, kfake.EnableSASL(),
			kfake.ListenFn(func(string, string) (net.Listener, error) { return fr.inner, nil }))
	} else {
		opts = append(opts, kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }))
		if cfg.TLS != nil {
			opts = append(opts, kfake.TLS(cfg.TLS))
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		if fr != nil {
			fr.close()
		}
		unlock()
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Addr, err)
	}
	autoCreateForOldMetadata(c)
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		if fr != nil {
			fr.close()
		}
		unlock()
		return nil, fmt.Errorf("start embedded broker on %s: no listener", cfg.Addr)
	}
	b := &Broker{cluster: c, front: fr, addr: addrs[0], unlock: sync.OnceFunc(unlock)}
	if cfg.SchemaRegistry != "" {
		// In the locked data dir: one registry per dir, as one broker.
		if b.registry, err = registry.Start(cfg.SchemaRegistry, cfg.DataDir); err != nil {
			b.Close()
			return nil, err
		}
	}
	if fr != nil {
		fr.start()
	}
	return b, nil
}

// RegistryURL is the base URL of the broker's schema registry, or "" when
// it serves none.
func (b *Broker) RegistryURL() string {
	if b.registry == nil {
		return ""
	}
	return b.registry.URL()
}

// autoCreateForOldMetadata makes Metadata requests v0 to v3, which have no
// allow_auto_topic_creation field, create the topics they name, as real
// Kafka does for them with auto.create.topics.enable on (its default):
// without it, a client on those versions (kafka-python 2.0.2) waits
// forever for a topic nothing creates.
func autoCreateForOldMetadata(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Metadata), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if req, ok := kreq.(*kmsg.MetadataRequest); ok && req.Version < 4 {
			req.AllowAutoTopicCreation = true
		}
		return nil, nil, false // the cluster answers it
	})
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, saving its state when it has a DataDir. It is
// idempotent.
func (b *Broker) Close() {
	if b.registry != nil {
		b.registry.Close()
	}
	if b.front != nil {
		b.front.stopAccepting()
	}
	b.cluster.Close()
	if b.front != nil {
		b.front.close() // every connection, after kfake's own ends
	}
	b.unlock() // after the state is saved
}

// The process's shared embedded broker: every app of one process whose
// config says "embedded" talks to the same broker, as they would to one
// cluster. It starts with the first user and stops with the last.
var shared = refcount.New(func() (*Broker, error) { return Start(Config{}) }, (*Broker).Close)

// Acquire returns the process's shared embedded broker, starting it if no
// one uses it, and a release function to call once done with it.
func Acquire() (*Broker, func(), error) { return shared.Acquire() }
