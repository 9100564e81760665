package main_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

// sink is a webhook target counting deliveries per event ID.
type sink struct {
	mu    sync.Mutex
	seen  map[string]int
	total int
}

func newSink(t *testing.T) (*sink, string) {
	s := &sink{seen: map[string]int{}}
	srv := newWebhooks(t, map[string]func(int, http.ResponseWriter, *http.Request){
		"sink": func(_ int, w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.seen[r.Header.Get("X-Event-ID")]++
			s.total++
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		},
	})
	return s, srv.URL + "/sink"
}

// counts returns distinct IDs delivered and all deliveries.
func (s *sink) counts() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen), s.total
}

// report checks that every one of n events arrived and returns the
// duplicates (deliveries beyond the first).
func (s *sink) report(t *testing.T, n int) (lost, duplicates int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		if s.seen["evt-"+strconv.Itoa(i)] == 0 {
			lost++
		}
	}
	return lost, s.total - len(s.seen)
}

// modes are the consumption modes every fault test runs in.
var modes = []string{"partition", "key"}

// eachMode runs test once per consumption mode (kafka.consume).
func eachMode(t *testing.T, test func(t *testing.T, mode string)) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { test(t, mode) })
	}
}

// faultSetup produces n events (64 keys) to a fresh topic and writes a
// relay config delivering them to a sink, consuming in mode.
func faultSetup(t *testing.T, addr string, n int, sinkURL, mode string) (cfgPath, httpAddr string) {
	t.Helper()
	topic := kafkatest.Unique("stream")
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = record(topic, "evt-"+strconv.Itoa(i), "", strconv.Itoa(i))
		recs[i].Key = []byte("k" + strconv.Itoa(i%64))
	}
	kafkatest.Produce(t, addr, recs...)
	httpAddr = proctest.FreeAddr(t)
	cfgPath = proctest.WriteConfig(t, fmt.Sprintf(`
service: %s
kafka: {brokers: [%s], consume: %s, session_timeout: 3s, heartbeat_interval: 300ms, rebalance_timeout: 3s, commit_interval: 100ms}
retry: {initial_interval: 10ms, max_interval: 50ms}
shutdown_timeout: 10s
http: {addr: %s}
subscriber:
  routes:
    - {name: sink, topic: %s, webhook: {url: %s}}
`, kafkatest.Unique("relay"), addr, mode, httpAddr, topic, sinkURL))
	return cfgPath, httpAddr
}

// waitDelivered waits until at least n distinct events arrived.
func (s *sink) waitDelivered(t *testing.T, n int) {
	t.Helper()
	kafkatest.Eventually(t, 60*time.Second, func() bool { d, _ := s.counts(); return d >= n },
		func() string {
			d, total := s.counts()
			return fmt.Sprintf("%d distinct of %d wanted (%d deliveries)", d, n, total)
		})
}

func TestCrashLosesNothing(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		const n = 20000
		_, addr := proctest.Broker(t, "")
		s, url := newSink(t)
		cfg, httpAddr := faultSetup(t, addr, n, url, mode)
		bin := proctest.Build(t, pkg)

		// Three SIGKILLs at random points of the stream, a restart after each.
		for kill := range 3 {
			p := proctest.Start(t, bin, nil, "--config", cfg)
			waitReady(t, p, httpAddr)
			d, _ := s.counts()
			at := d + 500 + rand.IntN(n/5)
			s.waitDelivered(t, min(at, n))
			p.Signal(syscall.SIGKILL)
			p.Wait(10 * time.Second)
			d, total := s.counts()
			t.Logf("kill %d: after %d distinct events (%d deliveries)", kill+1, d, total)
		}
		p := proctest.Start(t, bin, nil, "--config", cfg)
		waitReady(t, p, httpAddr)
		s.waitDelivered(t, n)
		p.Stop(30 * time.Second)

		lost, dup := s.report(t, n)
		t.Logf("crash: sent %d, lost %d, duplicated %d", n, lost, dup)
		if lost != 0 {
			t.Fatalf("lost %d of %d events after three SIGKILLs", lost, n)
		}
	})
}

func TestGracefulStopMidStream(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		const n = 5000
		_, addr := proctest.Broker(t, "")
		s, url := newSink(t)
		cfg, httpAddr := faultSetup(t, addr, n, url, mode)
		bin := proctest.Build(t, pkg)

		p := proctest.Start(t, bin, nil, "--config", cfg)
		waitReady(t, p, httpAddr)
		s.waitDelivered(t, n/3)
		start := time.Now()
		p.Stop(30 * time.Second) // exit code 0 within shutdown_timeout (plus close grace)
		stopped := time.Since(start)
		dBefore, totalBefore := s.counts()

		p = proctest.Start(t, bin, nil, "--config", cfg)
		waitReady(t, p, httpAddr)
		s.waitDelivered(t, n)
		p.Stop(30 * time.Second)

		lost, dup := s.report(t, n)
		t.Logf("graceful stop: sent %d, lost %d, duplicated %d; stopped in %s after %d distinct (%d deliveries)",
			n, lost, dup, stopped.Round(time.Millisecond), dBefore, totalBefore)
		if lost != 0 {
			t.Fatalf("lost %d of %d events across a graceful restart", lost, n)
		}
		if dup != 0 {
			t.Errorf("a graceful stop commits what was handled: want 0 duplicates, got %d", dup)
		}
	})
}

func TestBrokerRestartMidStream(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		const n = 5000
		dir := t.TempDir()
		b, addr := proctest.Broker(t, dir)
		s, url := newSink(t)
		cfg, httpAddr := faultSetup(t, addr, n, url, mode)
		p := proctest.Start(t, proctest.Build(t, pkg), nil, "--config", cfg)
		waitReady(t, p, httpAddr)
		s.waitDelivered(t, n/4)

		b.Stop(20 * time.Second)
		d, _ := s.counts()
		t.Logf("broker stopped after %d distinct events", d)
		proctest.BrokerAt(t, addr, dir)

		s.waitDelivered(t, n) // the relay reconnects by itself
		p.Stop(30 * time.Second)
		lost, dup := s.report(t, n)
		t.Logf("broker restart: sent %d, lost %d, duplicated %d", n, lost, dup)
		if lost != 0 {
			t.Fatalf("lost %d of %d events across a broker restart", lost, n)
		}
	})
}

func TestScaleOutAndIn(t *testing.T) {
	eachMode(t, func(t *testing.T, mode string) {
		const n = 20000
		_, addr := proctest.Broker(t, "")
		s, url := newSink(t)
		cfg, httpAddr := faultSetup(t, addr, n, url, mode)
		bin := proctest.Build(t, pkg)

		a := proctest.Start(t, bin, nil, "--config", cfg)
		waitReady(t, a, httpAddr)
		s.waitDelivered(t, n/10)
		httpB := proctest.FreeAddr(t)
		b := proctest.Start(t, bin, proctest.Env("EVENTFX_HTTP_ADDR", httpB), "--config", cfg)
		waitReady(t, b, httpB) // ready = joined: the group now has two members sharing the partitions
		d, _ := s.counts()
		t.Logf("second instance joined after %d distinct events", d)
		s.waitDelivered(t, d+n/10)

		a.Stop(30 * time.Second) // its partitions move to b
		d, _ = s.counts()
		t.Logf("first instance stopped after %d distinct events", d)
		s.waitDelivered(t, n)
		b.Stop(30 * time.Second)

		lost, dup := s.report(t, n)
		t.Logf("scale-out/in: sent %d, lost %d, duplicated %d", n, lost, dup)
		if lost != 0 {
			t.Fatalf("lost %d of %d events while scaling out and in", lost, n)
		}
	})
}

func TestBrokerAbsentAtStartIsAClearErrorWithinSeconds(t *testing.T) {
	nowhere := proctest.FreeAddr(t) // nothing listens there
	cfg := proctest.WriteConfig(t, fmt.Sprintf(`
kafka: {brokers: [%s]}
http: {addr: %s}
subscriber:
  routes:
    - {name: sink, topic: events, webhook: {url: http://127.0.0.1:1/hook}}
`, nowhere, proctest.FreeAddr(t)))
	start := time.Now()
	out, code := proctest.Run(t, 30*time.Second, nil, nil, proctest.Build(t, pkg), "--config", cfg)
	if code == 0 {
		t.Fatalf("started without a broker; output:\n%s", out)
	}
	lines := proctest.Lines(out)
	last := lines[len(lines)-1]
	if want := "no Kafka broker answered at " + nowhere; !strings.Contains(last, want) {
		t.Errorf("last line %q does not say %q; output:\n%s", last, want, out)
	}
	t.Logf("failed after %s: %s", time.Since(start).Round(time.Millisecond), last)
}

func TestHandlerSlowerThanTheSessionTimeoutCausesNoRebalanceStorm(t *testing.T) {
	_, addr := proctest.Broker(t, "")
	var mu sync.Mutex
	seen := map[string]int{}
	wh := newWebhooks(t, map[string]func(int, http.ResponseWriter, *http.Request){
		"slow": func(_ int, w http.ResponseWriter, r *http.Request) {
			time.Sleep(2500 * time.Millisecond) // longer than the 2s session timeout
			mu.Lock()
			seen[r.Header.Get("X-Event-ID")]++
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		},
	})
	topic := kafkatest.Unique("slow")
	const n = 2
	for i := range n {
		r := record(topic, "evt-"+strconv.Itoa(i), "", "x")
		r.Key = []byte("one-key") // one partition: handled one after the other
		kafkatest.Produce(t, addr, r)
	}
	httpAddr := proctest.FreeAddr(t)
	cfg := proctest.WriteConfig(t, fmt.Sprintf(`
service: %s
kafka: {brokers: [%s], session_timeout: 2s, heartbeat_interval: 200ms, commit_interval: 100ms}
http: {addr: %s}
subscriber:
  routes:
    - {name: slow, topic: %s, webhook: {url: %s/slow, timeout: 10s}}
`, kafkatest.Unique("relay"), addr, httpAddr, topic, wh.URL))
	p := proctest.Start(t, proctest.Build(t, pkg), nil, "--config", cfg)
	waitReady(t, p, httpAddr)
	kafkatest.Eventually(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n },
		func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprintf("delivered %v", seen) })
	p.Stop(30 * time.Second)

	mu.Lock()
	defer mu.Unlock()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times: a slow handler must not cause rebalances and redeliveries", id, c)
		}
	}
}

// TestSoakCrashes is the long variant of TestCrashLosesNothing: with
// EVENTFXTEST_SOAK set to a duration (e.g. EVENTFXTEST_SOAK=5m), it streams 100,000
// events and SIGKILLs the relay at random points until the duration is
// over, then checks nothing was lost. EVENTFXTEST_SOAK_CONSUME=key runs it
// in key mode. It is bounded by that duration (plus
// the final catch-up) and skipped otherwise.
func TestSoakCrashes(t *testing.T) {
	soak := os.Getenv("EVENTFXTEST_SOAK")
	if soak == "" {
		t.Skip("set EVENTFXTEST_SOAK=<duration> (e.g. 5m) to run the soak test")
	}
	d, err := time.ParseDuration(soak)
	if err != nil || d <= 0 || d > 2*time.Hour {
		t.Fatalf("EVENTFXTEST_SOAK=%q: want a duration between 0 and 2h", soak)
	}
	const n = 100000
	mode := cmp.Or(os.Getenv("EVENTFXTEST_SOAK_CONSUME"), "partition")
	_, addr := proctest.Broker(t, "")
	s, url := newSink(t)
	cfg, httpAddr := faultSetup(t, addr, n, url, mode)
	bin := proctest.Build(t, pkg)

	deadline := time.Now().Add(d)
	kills := 0
	for time.Now().Before(deadline) {
		if got, _ := s.counts(); got >= n {
			break
		}
		p := proctest.Start(t, bin, nil, "--config", cfg)
		waitReady(t, p, httpAddr)
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Millisecond) // a random point of the stream
		p.Signal(syscall.SIGKILL)
		p.Wait(10 * time.Second)
		kills++
	}
	p := proctest.Start(t, bin, nil, "--config", cfg)
	waitReady(t, p, httpAddr)
	s.waitDelivered(t, n)
	p.Stop(30 * time.Second)

	lost, dup := s.report(t, n)
	t.Logf("soak (%s, %s mode, %d SIGKILLs): sent %d, lost %d, duplicated %d", d, mode, kills, n, lost, dup)
	if lost != 0 {
		t.Fatalf("lost %d of %d events", lost, n)
	}
}
