package interop_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

// The embedded broker with SASL authenticates every client Kafka
// authenticates: librdkafka (which wants SaslHandshake v0 advertised),
// kafka-python 2.0.2 and Sarama with SASLHandshakeV0 (SaslHandshake v0,
// then bare SASL tokens), franz-go; with and without TLS.

// A user of each mechanism, each with its own password.
var saslUsers = []broker.SASLUser{
	{Mechanism: broker.SASLPlain, User: "alice", Password: "plain-pw"},
	{Mechanism: broker.SASLScramSHA256, User: "alice", Password: "scram256-pw"},
	{Mechanism: broker.SASLScramSHA512, User: "alice", Password: "scram512-pw"},
}

// secured is an embedded broker requiring SASL, with TLS or without.
type secured struct {
	addr     string
	tls      bool
	caFile   string      // the CA of the broker's certificate (TLS)
	clientTL *tls.Config // trusting that CA (TLS)
}

func (s secured) protocol() string {
	if s.tls {
		return "SASL_SSL"
	}
	return "SASL_PLAINTEXT"
}

func securedBroker(t *testing.T, withTLS bool) secured {
	t.Helper()
	cfg := broker.Config{Partitions: 4, SASL: saslUsers}
	var s secured
	if withTLS {
		p := kafkatest.NewPKI(t)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
		s.tls, s.caFile = true, p.CAFile
		s.clientTL = &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}
	}
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	s.addr = b.Addr()
	return s
}

// eachSecured runs f on a broker without TLS and on one with TLS, for
// each user.
func eachSecured(t *testing.T, f func(t *testing.T, s secured, u broker.SASLUser)) {
	for _, withTLS := range []bool{false, true} {
		s := securedBroker(t, withTLS)
		for _, u := range saslUsers {
			t.Run(s.protocol()+"/"+u.Mechanism, func(t *testing.T) { f(t, s, u) })
		}
	}
}

// franzOpts are a franz-go client's options for s as u.
func franzOpts(s secured, u broker.SASLUser) []kgo.Opt {
	var m kgo.Opt
	switch u.Mechanism {
	case broker.SASLPlain:
		m = kgo.SASL(plain.Auth{User: u.User, Pass: u.Password}.AsMechanism())
	case broker.SASLScramSHA256:
		m = kgo.SASL(scram.Auth{User: u.User, Pass: u.Password}.AsSha256Mechanism())
	default:
		m = kgo.SASL(scram.Auth{User: u.User, Pass: u.Password}.AsSha512Mechanism())
	}
	opts := []kgo.Opt{m, kgo.AllowAutoTopicCreation()}
	if s.tls {
		opts = append(opts, kgo.DialTLSConfig(s.clientTL))
	}
	return opts
}

// readBack reads n values of topic with franz-go, authenticated as u.
func readBack(t *testing.T, s secured, u broker.SASLUser, topic string, n int) []string {
	t.Helper()
	c := kafkatest.Client(t, s.addr, append(franzOpts(s, u), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var vs []string
	for len(vs) < n {
		fs := c.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "topic %s: %d of %d records: %v", topic, len(vs), n, vs)
		fs.EachRecord(func(r *kgo.Record) { vs = append(vs, string(r.Value)) })
	}
	slices.Sort(vs)
	return vs
}

// run runs a client process, killed after a minute.
func run(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not end within a minute: %s", name, out)
	}
	return string(out), err
}

func values(mech string) []string {
	return []string{mech + "-1", mech + "-2", mech + "-3"}
}

func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func kcatArgs(s secured, u broker.SASLUser, password string) []string {
	args := []string{"-b", s.addr, "-X", "security.protocol=" + s.protocol(), "-X", "sasl.mechanisms=" + u.Mechanism,
		"-X", "sasl.username=" + u.User, "-X", "sasl.password=" + password}
	if s.tls {
		args = append(args, "-X", "ssl.ca.location="+s.caFile)
	}
	return args
}

func TestKcatAuthenticatesWithSASL(t *testing.T) {
	kcat := need(t, "kcat", "kcat")
	eachSecured(t, func(t *testing.T, s secured, u broker.SASLUser) {
		to := kafkatest.Unique("kcat-sasl")
		want := values(u.Mechanism)

		out, err := run(t, strings.Join(want, "\n")+"\n", kcat, append(kcatArgs(s, u, u.Password), "-P", "-t", to, "-X", "acks=all")...)
		require.NoError(t, err, "kcat -P: %s", out)
		assert.Equal(t, want, readBack(t, s, u, to, len(want)), "what kcat produced")

		out, err = run(t, "", kcat, append(kcatArgs(s, u, u.Password), "-C", "-t", to, "-o", "beginning", "-e", "-q")...)
		require.NoError(t, err, "kcat -C: %s", out)
		assert.Equal(t, want, lines(out), "what kcat consumed")

		// Refused as Kafka refuses it: SASL_AUTHENTICATION_FAILED.
		start := time.Now()
		out, err = run(t, "x\n", kcat, append(kcatArgs(s, u, "wrong-pw"), "-P", "-t", to, "-X", "message.timeout.ms=10000")...)
		require.Error(t, err, "kcat with a wrong password: %s", out)
		assert.Contains(t, out, "SASL authentication error: Authentication failed")
		assert.Less(t, time.Since(start), 9*time.Second, "kcat learns at once that the password is wrong")
		assert.Equal(t, want, readBack(t, s, u, to, len(want)), "nothing more on the topic")
	})
}

// kafkaPython produces the values of argv[7:] to argv[6] with kafka-python,
// then consumes that many and prints them. argv: addr, protocol, CA file
// ("" without TLS), mechanism, user, password, topic, values….
const kafkaPython = `
import sys
from kafka import KafkaProducer, KafkaConsumer
addr, protocol, ca, mech, user, password, topic = sys.argv[1:8]
vals = sys.argv[8:]
kw = dict(bootstrap_servers=addr, security_protocol=protocol, sasl_mechanism=mech,
          sasl_plain_username=user, sasl_plain_password=password)
if ca:
    kw['ssl_cafile'] = ca
p = KafkaProducer(acks='all', max_block_ms=15000, **kw)
for v in vals:
    p.send(topic, value=v.encode())
p.flush(timeout=15)
p.close()
c = KafkaConsumer(topic, auto_offset_reset='earliest', consumer_timeout_ms=15000, **kw)
n = 0
for m in c:
    print(m.value.decode())
    n += 1
    if n == len(vals):
        break
c.close()
`

func TestKafkaPythonAuthenticatesWithSASL(t *testing.T) {
	python := need(t, "/usr/bin/python3", "python3")
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		t.Skip("kafka-python is not installed (Debian package python3-kafka; CI installs it)")
	}
	eachSecured(t, func(t *testing.T, s secured, u broker.SASLUser) {
		to := kafkatest.Unique("python-sasl")
		want := values(u.Mechanism)
		args := func(password string, vals ...string) []string {
			return append([]string{"-c", kafkaPython, s.addr, s.protocol(), s.caFile, u.Mechanism, u.User, password, to}, vals...)
		}

		out, err := run(t, "", python, args(u.Password, want...)...)
		require.NoError(t, err, "kafka-python: %s", out)
		assert.Equal(t, want, lines(out), "what kafka-python consumed")
		assert.Equal(t, want, readBack(t, s, u, to, len(want)), "what kafka-python produced")

		// Refused as Kafka refuses a SaslHandshake v0 client: the
		// connection closes, and kafka-python finds no broker.
		out, err = run(t, "", python, args("wrong-pw", "more")...)
		require.Error(t, err, "kafka-python with a wrong password: %s", out)
		assert.Contains(t, out, "NoBrokersAvailable")
		assert.Equal(t, want, readBack(t, s, u, to, len(want)), "nothing more on the topic")
	})
}

func TestFranzGoAuthenticatesThroughTheSASLFront(t *testing.T) {
	eachSecured(t, func(t *testing.T, s secured, u broker.SASLUser) {
		to := kafkatest.Unique("franz-sasl")
		want := values(u.Mechanism)
		c := kafkatest.Client(t, s.addr, franzOpts(s, u)...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, v := range want {
			require.NoError(t, c.ProduceSync(ctx, &kgo.Record{Topic: to, Value: []byte(v)}).FirstErr())
		}
		assert.Equal(t, want, readBack(t, s, u, to, len(want)))

		wrong := u
		wrong.Password = "wrong-pw"
		bad := kafkatest.Client(t, s.addr, franzOpts(s, wrong)...)
		err := bad.Ping(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "SASL_AUTHENTICATION_FAILED")
	})
}

// saramaSCRAM adapts xdg-go/scram to Sarama.
type saramaSCRAM struct {
	hash xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

func (c *saramaSCRAM) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *saramaSCRAM) Step(challenge string) (string, error) {
	if c.conv == nil {
		return "", errors.New("Step before Begin")
	}
	return c.conv.Step(challenge)
}

func (c *saramaSCRAM) Done() bool { return c.conv != nil && c.conv.Done() }

// Sarama with SASLHandshakeV0 speaks as kafka-python does: SaslHandshake
// v0, then bare tokens.
func TestSaramaSASLHandshakeV0(t *testing.T) {
	eachSecured(t, func(t *testing.T, s secured, u broker.SASLUser) {
		config := func(password string) *sarama.Config {
			sc := sarama.NewConfig()
			sc.Version = sarama.V1_0_0_0
			sc.ApiVersionsRequest = false // Sarama's condition for SASL v0
			sc.Producer.Return.Successes = true
			sc.Producer.RequiredAcks = sarama.WaitForAll
			sc.Metadata.Retry.Max = 1
			sc.Net.SASL.Enable = true
			sc.Net.SASL.Version = sarama.SASLHandshakeV0
			sc.Net.SASL.User, sc.Net.SASL.Password = u.User, password
			switch u.Mechanism {
			case broker.SASLPlain:
				sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
			case broker.SASLScramSHA256:
				sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
				sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xscram.SHA256} }
			default:
				sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
				sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xscram.SHA512} }
			}
			if s.tls {
				sc.Net.TLS.Enable, sc.Net.TLS.Config = true, s.clientTL
			}
			return sc
		}
		to := kafkatest.Unique("sarama-sasl")
		want := values(u.Mechanism)
		p, err := sarama.NewSyncProducer([]string{s.addr}, config(u.Password))
		require.NoError(t, err)
		for _, v := range want {
			_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: to, Value: sarama.StringEncoder(v)})
			require.NoError(t, err)
		}
		require.NoError(t, p.Close())
		assert.Equal(t, want, readBack(t, s, u, to, len(want)))

		_, err = sarama.NewSyncProducer([]string{s.addr}, config("wrong-pw"))
		assert.Error(t, err, fmt.Sprintf("Sarama (%s) with a wrong password", u.Mechanism))
	})
}
