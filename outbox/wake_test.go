package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/pgtest"
	"github.com/eventfx/eventfx/outbox"
)

// What wakes the relay, with a poll interval of an hour: each event
// arrives long before the poll would have found it.
func TestWhatWakesTheRelay(t *testing.T) {
	t.Parallel()
	addr := kafkatest.Broker(t)
	dsn := pgtest.DSN(t)
	cfg := outboxConfig(addr, dsn)
	cfg.Outbox.PollInterval = time.Hour
	cfg.Outbox.Notify = true
	s := start(t, cfg)
	ctx := context.Background()

	// Another process's writer: its own pool and Outbox, so only the
	// NOTIFY after its commit reaches the relay.
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	other := outbox.New(pool, config.Outbox{Notify: true})

	// Each case on its own slot: a look at one slot is not a look at the
	// next case's.
	keys := []string{"wake-a", "wake-b", "wake-c"}
	require.Len(t, map[int]bool{outbox.SlotOf(keys[0]): true, outbox.SlotOf(keys[1]): true, outbox.SlotOf(keys[2]): true}, 3)
	tests := []struct {
		name    string
		publish func(topic string) error
	}{
		{"a commit through Tx", func(topic string) error {
			return s.ob.Tx(ctx, func(tx pgx.Tx) error {
				_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: keys[0]})
				return err
			})
		}},
		{"a Publish in a transaction the caller commits", func(topic string) error {
			return pgx.BeginFunc(ctx, s.ob.Pool(), func(tx pgx.Tx) error {
				_, err := s.ob.Publish(ctx, tx, topic, OrderPlaced{Order: keys[1]})
				return err
			})
		}},
		{"a NOTIFY from another process's commit", func(topic string) error {
			return other.Tx(ctx, func(tx pgx.Tx) error {
				_, err := other.Publish(ctx, tx, topic, OrderPlaced{Order: keys[2]})
				return err
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := kafkatest.Unique("wake")
			require.NoError(t, tt.publish(topic))
			kafkatest.Read(t, addr, topic, 1, 20*time.Second)
		})
	}
}
