package keyorder_test

import (
	"context"
	"log"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/keyorder"
)

// A handler behind a Watermill router, its keys of one partition processed
// in parallel. Drain before closing the router, so in-flight handlers
// finish and their offsets are committed.
func ExampleSubscriber() {
	sub, err := keyorder.New(keyorder.Config{
		Brokers: []string{"localhost:9092"},
		Group:   "billing.charge",
		Unmarshal: func(r *kgo.Record) *message.Message {
			return message.NewMessage(string(r.Key)+"@"+r.Topic, r.Value)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	router.AddConsumerHandler("charge", "orders", sub, func(msg *message.Message) error {
		return nil // one call per key at a time; different keys concurrently
	})
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()

	// At shutdown:
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.Drain(ctx); err != nil {
		log.Printf("drain: %v", err) // in-flight messages were cancelled
	}
	_ = router.Close() // closes sub: commit, leave the group
}
