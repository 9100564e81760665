package main_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

func TestNoBrokerIsAOneLineErrorWithinSeconds(t *testing.T) {
	t.Parallel()
	addr := proctest.FreeAddr(t) // nothing listens there
	tests := []struct {
		name string
		args []string
	}{
		{"poison list", []string{"poison", "list"}},
		{"poison replay", []string{"poison", "replay"}},
		{"poison stats", []string{"poison", "stats"}},
		{"publish", []string{"publish", "--topic", "t", "hello"}},
		{"tail", []string{"tail", "--topic", "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := run(t, strings.NewReader(""), append(tt.args, "--brokers", addr)...)
			took := time.Since(start)
			assert.NotEqual(t, 0, r.code, "%s", r)
			assert.Empty(t, r.stdout)
			require.Len(t, lines(r.stderr), 1, "one line\n%s", r)
			assert.Regexp(t, `^eventfx: no Kafka broker answered at `+addr+` \(.*\)$`, strings.TrimSpace(r.stderr))
			assert.Less(t, took, 10*time.Second, "fails fast")
		})
	}
}

func TestUsageErrorsExitNonZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"poison", "list", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"unknown poison command", []string{"poison", "bogus"}, `unknown command "bogus"`},
		{"publish without --topic", []string{"publish", "x"}, `"topic" not set`},
		{"tail with a bad topic", []string{"tail", "--topic", "a b"}, "--topic"},
		{"negative limit", []string{"poison", "replay", "--limit", "-1"}, "--limit"},
		{"replay a bad group", []string{"poison", "replay", "--group", "orders"}, `--group: "orders" is not a group ID`},
		{"list a bad group", []string{"poison", "list", "--group", "ABCDEF123456"}, `--group: "ABCDEF123456" is not a group ID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			assert.Equal(t, 1, r.code, "%s", r)
			assert.Contains(t, r.stderr, tt.want)
		})
	}
}

// saslBroker is an in-process broker that requires SASL, with one user per
// mechanism.
func saslBroker(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.EnableSASL(),
		kfake.Superuser(config.SASLPlain, "plain-user", "plain-pw"),
		kfake.Superuser(config.SASLScramSHA256, "scram256-user", "scram256-pw"),
		kfake.Superuser(config.SASLScramSHA512, "scram512-user", "scram512-pw"),
	)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func saslConfig(t *testing.T, addr, mechanism, user, password string) string {
	t.Helper()
	return writeFile(t, "eventfx.yaml", "kafka:\n  brokers: ["+addr+"]\n  sasl:\n    mechanism: "+mechanism+
		"\n    username: "+user+"\n    password: "+password+"\n")
}

func TestSASLFromConfig(t *testing.T) {
	t.Parallel()
	addr := saslBroker(t)
	tests := []struct{ mechanism, user, password string }{
		{config.SASLPlain, "plain-user", "plain-pw"},
		{config.SASLScramSHA256, "scram256-user", "scram256-pw"},
		{config.SASLScramSHA512, "scram512-user", "scram512-pw"},
	}
	for _, tt := range tests {
		t.Run(tt.mechanism, func(t *testing.T) {
			t.Parallel()
			cfg := saslConfig(t, addr, tt.mechanism, tt.user, tt.password)
			r := run(t, nil, "publish", "--config", cfg, "--topic", kafkatest.Unique("secure"), "hello")
			assert.Equal(t, 0, r.code, "%s", r)
			assert.Regexp(t, published, strings.TrimSpace(r.stdout))
			assert.NotContains(t, r.stdout+r.stderr, tt.password, "the password is never printed")
		})
	}
}

func TestSASLWrongPasswordIsAOneLineErrorWithoutThePassword(t *testing.T) {
	t.Parallel()
	addr := saslBroker(t)
	cfg := saslConfig(t, addr, config.SASLScramSHA256, "scram256-user", "not-the-password")

	r := run(t, nil, "poison", "list", "--config", cfg)

	t.Log(r.stderr)
	assert.Equal(t, 1, r.code, "%s", r)
	require.Len(t, lines(r.stderr), 1, "%s", r)
	assert.Contains(t, r.stderr, addr)
	assert.Contains(t, r.stderr, `SASL SCRAM-SHA-256 as user "scram256-user"`)
	assert.NotContains(t, r.stdout+r.stderr, "not-the-password")
}

func TestSilentBrokerIsAnErrorNotAHang(t *testing.T) {
	t.Parallel()
	// Accepts connections, never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()

	start := time.Now()
	r := run(t, nil, "poison", "list", "--brokers", l.Addr().String())

	assert.Equal(t, 1, r.code, "%s", r)
	require.Len(t, lines(r.stderr), 1, "%s", r)
	assert.Contains(t, r.stderr, "no Kafka broker answered at "+l.Addr().String())
	assert.Less(t, time.Since(start), 15*time.Second)
}
