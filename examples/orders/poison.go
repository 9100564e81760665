package main

import (
	"context"
	"fmt"
	"time"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/poison"
)

// waitPoisoned lists the poison queue (what `eventfx poison list` prints)
// until it holds at least n messages.
func waitPoisoned(ctx context.Context, cfg config.Config, brokers []string, n int) ([]string, error) {
	c, err := poison.Dial(ctx, brokers, cfg.Kafka)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for {
		recs, err := c.List(ctx, cfg.Poison.Topic)
		if err != nil {
			return nil, err
		}
		if len(recs) >= n {
			lines := make([]string, len(recs))
			for i, r := range recs {
				lines[i] = fmt.Sprintf("%s topic=%s handler=%s attempts=%d reason=%q correlation_id=%s",
					r.ID, r.Topic, r.Handler, r.Attempts, r.Reason, r.CorrelationID)
			}
			return lines, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("poison queue: want %d messages, have %d: %w", n, len(recs), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// replay republishes the poisoned messages of one handler to their original
// topic (what `eventfx poison replay --handler H` does).
func replay(ctx context.Context, cfg config.Config, brokers []string, handler string) (string, error) {
	c, err := poison.Dial(ctx, brokers, cfg.Kafka)
	if err != nil {
		return "", err
	}
	defer c.Close()
	summary, err := c.Replay(ctx, poison.ReplayOptions{Topic: cfg.Poison.Topic, Handler: handler})
	if err != nil {
		return "", err
	}
	return summary.String(), nil
}
