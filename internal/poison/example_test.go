package poison_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
)

// A program lists a poison topic and replays it; replayed again, it
// replays nothing: the replay ledger remembers.
func ExampleClient_Replay() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(broker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	if err := putPoisonedMessage(ctx, b.Addr()); err != nil {
		fmt.Println(err)
		return
	}

	c, err := poison.Dial(ctx, []string{b.Addr()}, config.Kafka{})
	if err != nil {
		fmt.Println(err) // one line: no Kafka broker answered at …
		return
	}
	defer c.Close()
	recs, err := c.List(ctx, config.DefaultPoisonTopic)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Printf("%s from %s by %s: %s (replayed: %t)\n", r.ID, r.Topic, r.Handler, r.Reason, r.AlreadyReplayed)
	}
	for range 2 {
		sum, err := c.Replay(ctx, poison.ReplayOptions{
			Topic: config.DefaultPoisonTopic,
			Report: func(r poison.ReplayResult) error {
				fmt.Println(r.Action, r.Record.ID, "to", r.Replay.Topic)
				return nil
			},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(sum)
	}
	// Output:
	// m-1 from orders by bill: decode: unexpected EOF (replayed: false)
	// replayed m-1 to orders
	// replayed 1, skipped 0 (already replayed 0, filtered 0), failed 0
	// replayed 0, skipped 1 (already replayed 1, filtered 0), failed 0
}

// putPoisonedMessage writes a poison record as the router writes it.
func putPoisonedMessage(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: config.DefaultPoisonTopic, Value: []byte(`{"order":1}`), Headers: hdrs(
		poison.IDHeader, "m-1",
		meta.ReasonPoisoned, "decode: unexpected EOF",
		meta.TopicPoisoned, "orders",
		meta.HandlerPoisoned, "bill",
	)}).FirstErr()
}

// Reasons that differ only in IDs, numbers and quoted values have one
// fingerprint, so the messages they poisoned are one group.
func ExampleFingerprint() {
	for _, reason := range []string{
		"order 1234 failed: timeout after 30s",
		"order 98 failed: timeout after 5s",
		"decode main.OrderPlaced: invalid character 'x' looking for beginning of value",
		`webhook http://127.0.0.1:9000/hook answered 404 Not Found: {"error":"no order 6ba7b810-9dad-11d1-80b4-00c04fd430c8"}`,
	} {
		fmt.Println(poison.Fingerprint(reason))
	}
	fmt.Println(poison.GroupID("orders", "bill", poison.Fingerprint("order 98 failed: timeout after 5s")))
	// Output:
	// order <num> failed: timeout after <dur>
	// order <num> failed: timeout after <dur>
	// decode main.OrderPlaced: invalid character <str> looking for beginning of value
	// webhook http://<num>:<num>/hook answered <num> Not Found: {"error":"no order <uuid>"}
	// 0458d2371ddf
}
