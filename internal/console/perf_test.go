package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/announcement"
	"github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/proctest"
)

// The size of BenchmarkViews' cluster.
const (
	perfRecords  = 1_000_000
	perfPoisoned = 500
	perfBatch    = 10_000
)

// BenchmarkViews measures every view and API answer of an `eventfx
// console` process over a topic of 1,000,000 records and a poison topic
// of 500 (five failure groups), a handler lagging by 100,000 records, and
// reports the console process's peak resident memory (VmHWM):
//
//	go test -run '^$' -bench BenchmarkViews -benchtime 10x ./internal/console
func BenchmarkViews(b *testing.B) {
	br, err := broker.Start(broker.Config{Partitions: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	addr := br.Addr()
	start := time.Now()
	fill(b, addr)
	b.Logf("filled %d records and %d poisoned in %s", perfRecords, perfPoisoned, time.Since(start).Round(time.Millisecond))

	bin := proctest.Build(b, "github.com/eventfx/eventfx/cmd/eventfx")
	consoleAddr := proctest.FreeAddr(b)
	p := proctest.Start(b, bin, []string{"EVENTFX_CONFIG="}, "console", "--brokers", addr, "--addr", consoleAddr, "--sample-every", "1s")
	p.WaitOutput(`eventfx console on`, 30*time.Second)
	base := "http://" + consoleAddr
	waitLag(b, base)

	group := poison.GroupID("orders", "notify", poison.Fingerprint(perfReasons[0]))
	views := []struct{ name, path string }{
		{"topology", "/"},
		{"lag", "/lag"},
		{"poison", "/poison"},
		{"group", "/poison/" + group},
		{"messages", "/messages?topic=orders"},
		{"messages-filtered", "/messages?topic=orders&correlation_id=conv-999990"},
		{"conversation", "/conversations/conv-999990"},
		{"api-topology", "/api/topology"},
		{"api-lag", "/api/lag"},
		{"api-poison-groups", "/api/poison/groups"},
		{"api-group-messages", "/api/poison/groups/" + group + "/messages"},
		{"api-messages", "/api/topics/orders/messages?partition=3&offset=500&limit=100"},
		{"api-conversation", "/api/conversations/conv-999990"},
	}
	for _, v := range views {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				res, err := http.Get(base + v.path)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %d %s", v.path, res.StatusCode, body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/answer")
			b.Logf("peak after %s: %d MiB", v.name, peakRSS(b, p)>>20)
		})
	}
	b.Run("api-replay-dry-run", func(b *testing.B) {
		for b.Loop() {
			res, err := http.Post(base+"/api/poison/replay", "application/json", strings.NewReader(`{"group":"`+group+`","dry_run":true}`))
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"replayed": 100`) {
				b.Fatalf("dry run: %d %s", res.StatusCode, body)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/answer")
	})
	b.Run("console-peak-memory", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(float64(peakRSS(b, p))/(1<<20), "MiB")
	})
}

// fill writes perfRecords orders (keyed by customer, each with an ID and
// a correlation ID), perfPoisoned poison records of orders in five
// groups, an announcement of a service whose handler "bill" committed
// all but the last 100,000 orders.
func fill(b *testing.B, addr string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchMaxBytes(4<<20), kgo.MaxBufferedRecords(perfBatch*2))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	value := []byte(`{"id":"order-0000000","amount":4200,"currency":"EUR","customer":"customer-000"}`)
	for i := 0; i < perfRecords; i += perfBatch {
		recs := make([]*kgo.Record, perfBatch)
		for j := range recs {
			n := i + j
			recs[j] = &kgo.Record{Topic: "orders", Key: []byte("customer-" + strconv.Itoa(n%1000)), Value: value, Headers: []kgo.RecordHeader{
				{Key: poison.IDHeader, Value: []byte("order-" + strconv.Itoa(n))},
				{Key: meta.CorrelationID, Value: []byte("conv-" + strconv.Itoa(n))},
			}}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	var recs []*kgo.Record
	for i := range perfPoisoned {
		n := perfRecords - perfPoisoned + i
		recs = append(recs, &kgo.Record{Topic: "eventfx.poison", Key: []byte("customer-" + strconv.Itoa(n%1000)), Value: value, Headers: []kgo.RecordHeader{
			{Key: poison.IDHeader, Value: []byte("order-" + strconv.Itoa(n))},
			{Key: meta.CorrelationID, Value: []byte("conv-" + strconv.Itoa(n))},
			{Key: meta.ReasonPoisoned, Value: []byte(perfReasons[i%len(perfReasons)])},
			{Key: meta.TopicPoisoned, Value: []byte("orders")},
			{Key: meta.HandlerPoisoned, Value: []byte("notify")},
			{Key: meta.ConsumerGroup, Value: []byte("shop.notify")},
			{Key: meta.Attempts, Value: []byte("1")},
			{Key: meta.PoisonedAt, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
			{Key: meta.OriginalPartition, Value: []byte("0")},
			{Key: meta.OriginalOffset, Value: []byte(strconv.Itoa(n))},
		}})
	}
	now := time.Now().UTC()
	recs = append(recs, announcement.Announcement{
		Service: "shop", Instance: "perf-1", State: announcement.StateRunning, StartedAt: now, Heartbeat: now.Add(time.Hour),
		Interval: announcement.Duration(announcement.DefaultInterval), PoisonTopic: "eventfx.poison",
		Handlers: []announcement.Handler{
			{Name: "bill", Topic: "orders", ConsumerGroup: "shop.bill", Consume: "partition"},
			{Name: "notify", Topic: "orders", ConsumerGroup: "shop.notify", Consume: "partition"},
		},
	}.Record())
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		b.Fatal(err)
	}
	bill, notify := kadm.Offsets{}, kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		bill.AddOffset(o.Topic, o.Partition, o.Offset-perfLag/8, -1)
		notify.AddOffset(o.Topic, o.Partition, o.Offset, -1)
	})
	for g, offs := range map[string]kadm.Offsets{"shop.bill": bill, "shop.notify": notify} {
		if err := adm.CommitAllOffsets(ctx, g, offs); err != nil {
			b.Fatal(err)
		}
	}
}

// perfReasons are the reasons of the five failure groups.
var perfReasons = []string{
	"webhook answered 422: customer record missing",
	"webhook answered 400: currency not supported",
	"decode: invalid character 'x' looking for beginning of value",
	"validate: amount must be positive",
	"webhook answered 410: endpoint gone",
}

// perfLag is the lag of handler bill, over its 8 partitions.
const perfLag = 100_000

// waitLag waits for the console's first sample of bill's lag.
func waitLag(b *testing.B, base string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(base + "/api/lag")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.Contains(string(body), `"lag": `+strconv.Itoa(perfLag)) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("the console did not show bill's lag of %d", perfLag)
}

// peakRSS is the process's peak resident set size (VmHWM), in bytes.
func peakRSS(b *testing.B, p *proctest.Proc) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
