package main

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/poison"
)

// kafkaConn is a command's connection to Kafka, which a broker answered
// (poison.Dial: security, timeouts and partitioner from the config), and
// the config it was made from.
type kafkaConn struct {
	*poison.Client
	cfg config.Config
}

// connect resolves the brokers and the config, and returns a connection
// once a broker answered; otherwise a one-line error naming the brokers.
// The caller closes it.
func (g *globals) connect(ctx context.Context, opts ...poison.Option) (*kafkaConn, error) {
	brokers, cfg, err := g.resolveBrokers()
	if err != nil {
		return nil, err
	}
	c, err := poison.Dial(ctx, brokers, cfg.Kafka, opts...)
	if err != nil {
		return nil, err
	}
	return &kafkaConn{Client: c, cfg: cfg}, nil
}

// producer returns a client that writes records, creating their topics
// when the brokers allow it (as eventfx's services do on first use).
func (c *kafkaConn) producer() (*kgo.Client, error) {
	return c.NewKafkaClient(kgo.AllowAutoTopicCreation())
}
