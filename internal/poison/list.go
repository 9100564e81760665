package poison

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
)

// ErrReadLedger is wrapped by the error of List and Replay when they could
// not read the replay ledger; they did nothing else.
var ErrReadLedger = errors.New("read replay ledger")

// List returns the records of the poison topic, from the start of each
// partition to the end it had when List was called: it never waits for new
// records. Records come partition by partition in offset order, the
// partitions interleaved; each has AlreadyReplayed set from the replay
// ledger, read first. A topic that does not exist has no records.
//
// ctx bounds the whole read; besides, List gives up with an error when no
// record arrives for 30s before the end. On an error after the ledger was
// read, List also returns the records read until then.
func (c *Client) List(ctx context.Context, topic string) ([]Record, error) {
	if err := config.ValidTopicName(topic); err != nil {
		return nil, fmt.Errorf("poison topic: %w", err)
	}
	ledger, err := c.readLedger(ctx, topic)
	if err != nil {
		return nil, err
	}
	var recs []Record
	err = c.readToEnd(ctx, topic, func(r *kgo.Record) error {
		p := Parse(r)
		p.AlreadyReplayed = ledger.Has(p)
		recs = append(recs, p)
		return nil
	})
	if err != nil {
		return recs, fmt.Errorf("read poison topic: %w", err)
	}
	return recs, nil
}

// readLedger reads the replay ledger of poisonTopic to its end.
func (c *Client) readLedger(ctx context.Context, poisonTopic string) (*Ledger, error) {
	l := NewLedger()
	topic := LedgerTopic(poisonTopic)
	err := c.readToEnd(ctx, topic, func(r *kgo.Record) error {
		e, err := ParseEntry(r)
		if err != nil {
			c.badLedger(topic, err)
			return nil
		}
		l.Add(e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReadLedger, err)
	}
	return l, nil
}

// ensureLedger creates the ledger topic if it does not exist, before
// anything is replayed: a broker that does not create topics on first use
// must not let a run replay messages it cannot record. The topic is
// compacted, so that retention never forgets an entry (keys are unique:
// compaction removes nothing).
func (c *Client) ensureLedger(ctx context.Context, topic string) error {
	ends, err := c.EndOffsets(ctx, topic)
	if err != nil || ends != nil {
		return err
	}
	compact := "compact"
	_, err = kadm.NewClient(c.admin).CreateTopic(ctx, -1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create the replay ledger %s (nothing was replayed): %w", topic, err)
	}
	return nil
}
