package poison_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/proctest"
)

// testTimeout bounds each operation of a test on the embedded broker.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects to addr, closing the client at cleanup.
func dial(t *testing.T, addr string, opts ...poison.Option) *poison.Client {
	t.Helper()
	c, err := poison.Dial(testContext(t), []string{addr}, config.Kafka{}, opts...)
	require.NoError(t, err, "dial %s", addr)
	t.Cleanup(c.Close)
	return c
}

func TestDialWithoutBrokerIsAOneLineErrorNamingTheAddress(t *testing.T) {
	t.Parallel()
	addr := proctest.FreeAddr(t)

	c, err := poison.Dial(testContext(t), []string{addr}, config.Kafka{})

	require.Error(t, err, "nothing listens at %s", addr)
	assert.Nil(t, c)
	assert.Regexp(t, `^no Kafka broker answered at `+addr+` \(.+\)$`, err.Error())
	assert.NotContains(t, err.Error(), "\n", "one line")
}

func TestDialNamesTheLikelyCauses(t *testing.T) {
	t.Parallel()
	addr := proctest.FreeAddr(t)
	k := config.Kafka{SASL: config.SASL{Mechanism: config.SASLScramSHA256, Username: "alice", Password: "s3cret-pw"}}

	_, err := poison.Dial(testContext(t), []string{addr}, k)

	require.Error(t, err)
	assert.Contains(t, err.Error(), `with SASL SCRAM-SHA-256 as user "alice"`)
	assert.NotContains(t, err.Error(), "s3cret-pw", "never the password")
}

func TestDialReturnsTheContextErrorWhenCancelled(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := poison.Dial(ctx, []string{addr}, config.Kafka{})

	assert.ErrorIs(t, err, context.Canceled)
}

func TestDialRejectsABadSecurityConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		k    config.Kafka
		want string
	}{
		{"unknown SASL mechanism", config.Kafka{SASL: config.SASL{Mechanism: "GSSAPI"}}, `kafka.sasl.mechanism: unsupported "GSSAPI"`},
		{"missing CA file", config.Kafka{TLS: config.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, "kafka.tls.ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := poison.Dial(testContext(t), []string{"127.0.0.1:1"}, tt.k)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestNewKafkaClientSharesTheConnectionSettings(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	c := dial(t, addr)
	topic := kafkatest.Unique("other")

	cl, err := c.NewKafkaClient(kgo.AllowAutoTopicCreation())
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(testContext(t), &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr())

	ends, err := c.EndOffsets(testContext(t), topic)
	require.NoError(t, err)
	var n int64
	for _, end := range ends {
		n += end
	}
	assert.Equal(t, int64(1), n, "end offsets %v", ends)
	missing, err := c.EndOffsets(testContext(t), kafkatest.Unique("missing"))
	require.NoError(t, err)
	assert.Nil(t, missing, "a topic that does not exist")
}
