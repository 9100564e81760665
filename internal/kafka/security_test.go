package kafka_test

import (
	"context"

	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/transport"
)

func TestSASLMechanisms(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.EnableSASL(),
		kfake.GroupMinSessionTimeout(100*time.Millisecond), // kafkatest.Config uses 2 s
		kfake.Superuser(config.SASLPlain, "plain-user", "plain-pw"),
		kfake.Superuser(config.SASLScramSHA256, "scram256-user", "scram256-pw"),
		kfake.Superuser(config.SASLScramSHA512, "scram512-user", "scram512-pw"),
	)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	quiet := slog.New(slog.DiscardHandler)

	tests := []struct {
		name    string
		sasl    config.SASL
		wantErr bool
	}{
		{"PLAIN", config.SASL{Mechanism: config.SASLPlain, Username: "plain-user", Password: "plain-pw"}, false},
		{"SCRAM-SHA-256", config.SASL{Mechanism: config.SASLScramSHA256, Username: "scram256-user", Password: "scram256-pw"}, false},
		{"SCRAM-SHA-512", config.SASL{Mechanism: config.SASLScramSHA512, Username: "scram512-user", Password: "scram512-pw"}, false},
		{"wrong password", config.SASL{Mechanism: config.SASLScramSHA256, Username: "scram256-user", Password: "nope"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafkatest.Config(addr)
			cfg.Kafka.SASL = tt.sasl
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			k, err := kafka.New(cfg, quiet)
			if err == nil {
				err = k.Start(ctx)
				defer k.Close()
			}
			if tt.wantErr {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), tt.sasl.Password, "the password never appears in errors")
				assert.Contains(t, err.Error(), "wrong credentials")
				return
			}
			require.NoError(t, err)
			topic := kafkatest.Unique("secure")
			err = k.Publisher().Publish(topic, message.NewMessage("m1", []byte("hello")))
			require.NoError(t, err)
			// Both consumers authenticate: Sarama's (by partition) and
			// franz-go's (by key).
			consumeInBothModes(t, k, topic, "hello")
		})
	}
}

// consumeInBothModes reads want from topic with a subscriber of k in each
// consumption mode: Sarama's (by partition) and franz-go's (by key).
func consumeInBothModes(t *testing.T, k *kafka.Transport, topic, want string) {
	t.Helper()
	for _, mode := range []string{config.ConsumePartition, config.ConsumeKey} {
		sub, err := k.Subscriber(transport.Spec{ConsumerGroup: kafkatest.Unique("g"), Consume: mode})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		msgs, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err, mode)
		select {
		case m := <-msgs:
			assert.Equal(t, want, string(m.Payload), mode)
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("%s mode: nothing consumed", mode)
		}
		cancel()
		require.NoError(t, sub.Close(), mode)
	}
}
