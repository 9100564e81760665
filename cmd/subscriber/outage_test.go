package main_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// TestBrokerOutageIsLoggedOnceEachWay: with the broker down for several
// seconds, the relay logs one warning when it becomes unreachable and one
// info line when it answers again, and no error; what is published after
// the outage is delivered.
func TestBrokerOutageIsLoggedOnceEachWay(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		const n = 200
		dir := t.TempDir()
		b, addr := proctest.Broker(t, dir)
		s, url := newSink(t)
		cfg, httpAddr := faultSetup(t, addr, n, url, mode)
		p := proctest.Start(t, proctest.Build(t, pkg), nil, "--config", cfg)
		waitReady(t, p, httpAddr)
		s.waitDelivered(t, n)

		b.Stop(20 * time.Second)
		p.WaitOutput(`level=WARN msg="kafka unreachable: consuming and publishing wait for it"`, 20*time.Second)
		time.Sleep(6 * time.Second) // the outage lasts: no more lines about it
		proctest.BrokerAt(t, addr, dir)
		p.WaitOutput(`level=INFO msg="kafka reachable again: consuming and publishing resume" .*after=\d+s`, 30*time.Second)

		// Records produced after the outage reach the webhook.
		topic := topicOf(t, cfg)
		recs := make([]*kgo.Record, 10)
		for i := range recs {
			recs[i] = record(topic, "evt-"+strconv.Itoa(n+i), "", "after")
		}
		kafkatest.Produce(t, addr, recs...)
		s.waitDelivered(t, n+10)
		p.Stop(30 * time.Second)

		out := p.Output()
		assert.Equal(t, 1, strings.Count(out, `msg="kafka unreachable`), out)
		assert.Equal(t, 1, strings.Count(out, `msg="kafka reachable again`), out)
		assert.NotContains(t, out, "level=ERROR", "no error lines for an outage")
		assert.NotContains(t, out, "partitions=[]", "no loss reported when nothing was assigned")
		assert.NotContains(t, out, "goroutine ", "no stack traces")
	})
}

// topicOf is the route's topic in a config faultSetup wrote.
func topicOf(t *testing.T, cfgPath string) string {
	t.Helper()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`topic: (\S+),`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no route topic in %s", b)
	}
	return m[1]
}
