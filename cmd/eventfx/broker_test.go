package main_test

import (
	"context"
	"crypto/tls"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

func TestBrokerKeepsRecordsAndGroupOffsetsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b, addr := proctest.Broker(t, dir)
	topic, group := kafkatest.Unique("persist"), kafkatest.Unique("group")
	kafkatest.Produce(t, addr, &kgo.Record{Topic: topic, Value: []byte("one")}, &kgo.Record{Topic: topic, Value: []byte("two")})

	// Consume both in a group and commit.
	c := kafkatest.Client(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := 0
	for got < 2 {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 2 records", got)
		}
		got += fs.NumRecords()
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c.Close()

	b.Stop(20 * time.Second)
	proctest.BrokerAt(t, addr, dir)

	if n := kafkatest.Count(t, addr, topic); n != 2 {
		t.Fatalf("records after restart: want 2, got %d", n)
	}
	if n := kafkatest.Committed(t, addr, group, topic); n != 2 {
		t.Fatalf("committed offsets after restart: want 2, got %d", n)
	}
}

// startBroker runs `eventfx broker` in memory on a free port with extra
// flags and returns it with its address once it listens.
func startBroker(t *testing.T, flags ...string) (*proctest.Proc, string) {
	t.Helper()
	addr := proctest.FreeAddr(t)
	args := append([]string{"broker", "--addr", addr, "--data-dir", ""}, flags...)
	p := proctest.Start(t, proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx"), nil, args...)
	p.WaitOutput(`broker listening on `+regexp.QuoteMeta(addr), 20*time.Second)
	return p, addr
}

// tryProduce writes one record with a client of addr with opts and returns
// the error; a refused connection is an error at once, not after retries.
func tryProduce(t *testing.T, addr string, opts ...kgo.Opt) error {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RequestRetries(2)}, opts...)...)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		return err
	}
	return c.ProduceSync(ctx, &kgo.Record{Topic: kafkatest.Unique("secure"), Value: []byte("hello")}).FirstErr()
}

func TestBrokerSASLFlag(t *testing.T) {
	t.Parallel()
	p, addr := startBroker(t,
		"--sasl", "SCRAM-SHA-256:alice:s3cret",
		"--sasl", "SCRAM-SHA-512:bob:b0b-pw",
		"--sasl", "PLAIN:carol:c4rol:with:colons")

	tests := []struct {
		name    string
		mech    sasl.Mechanism
		wantErr bool
	}{
		{"SCRAM-SHA-256 right password", scram.Auth{User: "alice", Pass: "s3cret"}.AsSha256Mechanism(), false},
		{"SCRAM-SHA-256 wrong password", scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism(), true},
		{"SCRAM-SHA-512 right password", scram.Auth{User: "bob", Pass: "b0b-pw"}.AsSha512Mechanism(), false},
		{"SCRAM-SHA-512 user of another mechanism", scram.Auth{User: "alice", Pass: "s3cret"}.AsSha512Mechanism(), true},
		{"PLAIN password with colons", plain.Auth{User: "carol", Pass: "c4rol:with:colons"}.AsMechanism(), false},
		{"PLAIN wrong password", plain.Auth{User: "carol", Pass: "c4rol"}.AsMechanism(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tryProduce(t, addr, kgo.SASL(tt.mech))
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
	t.Run("without SASL the broker refuses", func(t *testing.T) {
		assert.Error(t, tryProduce(t, addr))
	})

	out := p.Output()
	assert.Contains(t, out, "SCRAM-SHA-256:alice", "the log names the SASL users")
	for _, pw := range []string{"s3cret", "b0b-pw", "c4rol"} {
		assert.NotContains(t, out, pw, "the broker never prints a password")
	}
}

func TestBrokerSecurityFlagErrors(t *testing.T) {
	t.Parallel()
	bin := proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"unknown mechanism", []string{"--sasl", "SCRAM-SHA-1:alice:pw-unknown"}, `--sasl (#1): unknown SASL mechanism "SCRAM-SHA-1"`},
		{"no password", []string{"--sasl", "PLAIN:alice"}, "--sasl (#1): want MECHANISM:USER:PASSWORD"},
		{"missing certificate", []string{"--tls-cert", "/no/such/cert.pem", "--tls-key", "/no/such/key.pem"}, "--tls-cert: stat /no/such/cert.pem"},
		{"key without certificate", []string{"--tls-key", "key.pem"}, "--tls-key needs --tls-cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := proctest.Run(t, 10*time.Second, nil, nil, bin,
				append([]string{"broker", "--addr", "127.0.0.1:0", "--data-dir", ""}, tt.flags...)...)
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, tt.want)
			assert.Len(t, proctest.Lines(out), 1, out)
			assert.NotContains(t, out, "pw-unknown", "the password is never printed")
		})
	}
}

func TestBrokerTLSFlags(t *testing.T) {
	t.Parallel()
	p := kafkatest.NewPKI(t)
	trusting := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}

	t.Run("server TLS", func(t *testing.T) {
		t.Parallel()
		_, addr := startBroker(t, "--tls-cert", p.ServerCertFile, "--tls-key", p.ServerKeyFile)
		assert.NoError(t, tryProduce(t, addr, kgo.DialTLSConfig(trusting.Clone())), "a client trusting the CA")
		assert.Error(t, tryProduce(t, addr, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})), "a client not trusting the CA")
		assert.Error(t, tryProduce(t, addr), "a plaintext client")
	})

	t.Run("client certificates", func(t *testing.T) {
		t.Parallel()
		_, addr := startBroker(t, "--tls-cert", p.ServerCertFile, "--tls-key", p.ServerKeyFile, "--tls-client-ca", p.CAFile)
		withCert := trusting.Clone()
		withCert.Certificates = []tls.Certificate{p.Client}
		assert.NoError(t, tryProduce(t, addr, kgo.DialTLSConfig(withCert)), "a client with a certificate of the CA")
		assert.Error(t, tryProduce(t, addr, kgo.DialTLSConfig(trusting.Clone())), "a client without a certificate")
	})

	t.Run("TLS and SASL together", func(t *testing.T) {
		t.Parallel()
		_, addr := startBroker(t, "--tls-cert", p.ServerCertFile, "--tls-key", p.ServerKeyFile, "--sasl", "SCRAM-SHA-512:alice:s3cret")
		assert.NoError(t, tryProduce(t, addr, kgo.DialTLSConfig(trusting.Clone()),
			kgo.SASL(scram.Auth{User: "alice", Pass: "s3cret"}.AsSha512Mechanism())))
		assert.Error(t, tryProduce(t, addr, kgo.DialTLSConfig(trusting.Clone()),
			kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism())))
	})
}
