package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/meta"
	"github.com/eventfx/eventfx/internal/poison"
	"github.com/eventfx/eventfx/internal/proctest"
)

const eventfxPkg = "github.com/eventfx/eventfx/cmd/eventfx"

// result is what a finished eventfx process printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// run runs eventfx with args (and stdin, when not nil) to completion,
// keeping stdout and stderr apart, and fails the test if it takes more
// than 30s. The environment names no config and no brokers.
func run(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	bin := proctest.Build(t, eventfxPkg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("eventfx %s did not finish within 30s; stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out.String(), errb.String())
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run eventfx: %v", err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// ok runs eventfx and requires exit code 0.
func ok(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	r := run(t, stdin, args...)
	require.Equal(t, 0, r.code, "eventfx %s\n%s", strings.Join(args, " "), r)
	return r
}

// cleanEnv is the test's environment without EVENTFX_ variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EVENTFX_") {
			env = append(env, kv)
		}
	}
	return env
}

// broker starts `eventfx broker` (in memory) for the test.
func broker(t *testing.T) string {
	t.Helper()
	_, addr := proctest.Broker(t, "")
	return addr
}

func hdrs(kv ...string) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

// poisonRecord is a poison record as router.Poison writes it: the original
// headers (ID, correlation ID, others), then the poison headers.
type poisonRecord struct {
	id, topic, handler, reason, key, correlationID, payload string
	attempts                                                string
	// poisonedAt is eventfx_poisoned_at; default 2025-06-01T12:00:00.5Z.
	poisonedAt string
	extra      []kgo.RecordHeader
}

func (p poisonRecord) record(poisonTopic string) *kgo.Record {
	if p.poisonedAt == "" {
		p.poisonedAt = "2025-06-01T12:00:00.5Z"
	}
	h := hdrs(poison.IDHeader, p.id, meta.CorrelationID, p.correlationID, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h = append(h, p.extra...)
	h = append(h, hdrs(
		meta.ReasonPoisoned, p.reason,
		meta.TopicPoisoned, p.topic,
		meta.HandlerPoisoned, p.handler,
		meta.SubscriberPoisoned, "svc."+p.handler,
		meta.Attempts, p.attempts,
		meta.PoisonedAt, p.poisonedAt,
		meta.ConsumerGroup, "svc."+p.handler,
		meta.OriginalPartition, "0",
		meta.OriginalOffset, "17",
	)...)
	r := &kgo.Record{Topic: poisonTopic, Value: []byte(p.payload), Headers: h}
	if p.key != "" {
		r.Key = []byte(p.key)
	}
	return r
}

// lines returns the non-empty lines of s.
func lines(s string) []string { return proctest.Lines(s) }

// jsonLines decodes each line of s as a JSON object.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range lines(s) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "not a JSON object: %s", l)
		out = append(out, m)
	}
	return out
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

var published = regexp.MustCompile(`^published id=(\S+) topic=(\S+) partition=(\d+) offset=(\d+) correlation_id=(\S+)$`)

var interrupt = os.Interrupt

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
