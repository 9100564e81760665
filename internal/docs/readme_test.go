package docs_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/proctest"
)

// readmeProgram returns the first Go block of the README's section titled
// heading.
func readmeProgram(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	i := strings.Index(readme, "\n## "+heading)
	require.GreaterOrEqual(t, i, 0, "README has no section %q", heading)
	_, rest, ok := strings.Cut(readme[i:], "```go\n")
	require.True(t, ok, "README section %q has no Go block", heading)
	src, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	return src
}

// errorLines are the lines of out at error level.
func errorLines(out string) []string {
	var errs []string
	for _, l := range proctest.Lines(out) {
		if strings.Contains(l, "level=ERROR") {
			errs = append(errs, l)
		}
	}
	return errs
}

// TestFiveMinuteService builds the README's five-minute service as a user
// would and runs it.
func TestFiveMinuteService(t *testing.T) {
	bin := proctest.BuildOutside(t, map[string]string{"main.go": readmeProgram(t, "Five minutes")})
	t.Run("says once why it cannot start", func(t *testing.T) { cannotStart(t, bin) })
	t.Run("reads --config", func(t *testing.T) { readsConfigFlag(t, bin) })
	t.Run("handles and serves the ops endpoints", func(t *testing.T) { handlesAndServesOps(t, bin) })
}

func cannotStart(t *testing.T, bin string) {
	nobody := proctest.FreeAddr(t) // nothing listens there
	out, code := proctest.Run(t, 60*time.Second, nil,
		proctest.Env("EVENTFX_KAFKA_BROKERS", nobody, "EVENTFX_HTTP_ADDR", proctest.FreeAddr(t)), bin)
	assert.Equal(t, 1, code, out)
	errs := errorLines(out)
	require.Len(t, errs, 1, "want one error line, got:\n%s", out)
	assert.Contains(t, errs[0], "start failed")
	assert.Contains(t, errs[0], nobody)
	assert.Equal(t, 1, strings.Count(out, "start failed"), "reported more than once:\n%s", out)
}

func readsConfigFlag(t *testing.T, bin string) {
	nobody := proctest.FreeAddr(t)
	file := filepath.Join(t.TempDir(), "service.yaml")
	require.NoError(t, os.WriteFile(file, []byte("service: billing\nkafka:\n  brokers: ["+nobody+"]\nhttp:\n  addr: "+proctest.FreeAddr(t)+"\n"), 0o600))
	out, code := proctest.Run(t, 60*time.Second, nil, nil, bin, "--config", file)
	assert.Equal(t, 1, code, out)
	errs := errorLines(out)
	require.Len(t, errs, 1, "want one error line, got:\n%s", out)
	assert.Contains(t, errs[0], nobody, "the broker of --config's file")
	assert.Contains(t, errs[0], "service=billing")
}

func TestFiveMinuteServiceReportsADuplicateHandlerByItsCause(t *testing.T) {
	src := readmeProgram(t, "Five minutes")
	register := `handlers.Register(handlers.New("billing", "orders", bill)),`
	require.Contains(t, src, register)
	src = strings.Replace(src, register, register+"\n\t\thandlers.Register(handlers.New(\"billing\", \"payments\", bill)),", 1)
	bin := proctest.BuildOutside(t, map[string]string{"main.go": src})
	out, code := proctest.Run(t, 60*time.Second, nil, proctest.Env("EVENTFX_HTTP_ADDR", proctest.FreeAddr(t)), bin)
	assert.Equal(t, 1, code, out)
	errs := errorLines(out)
	require.Len(t, errs, 1, "want one error line, got:\n%s", out)
	assert.Contains(t, errs[0], `\"billing\"`)
	assert.Contains(t, errs[0], "twice")
	assert.NotContains(t, out, "could not build", "fx's account of the error, not its cause")
}

// runMain is a service whose main is app.Run, with two handlers of one name.
const runMain = `package main

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/handlers"
)

func bill(context.Context, struct{}) error { return nil }

func main() {
	if err := app.Run(os.Args[1:], func(config.Config) fx.Option {
		return fx.Options(app.KafkaModule, app.SubscriberModule, handlers.Register(
			handlers.New("billing", "orders", bill),
			handlers.New("billing", "payments", bill),
		))
	}); err != nil {
		fmt.Fprintln(os.Stderr, "billing:", err)
		os.Exit(1)
	}
}
`

func TestRunReportsTheCauseOnce(t *testing.T) {
	bin := proctest.BuildOutside(t, map[string]string{"main.go": runMain})
	out, code := proctest.Run(t, 60*time.Second, nil, nil, bin)
	assert.Equal(t, 1, code, out)
	lines := proctest.Lines(out)
	require.Len(t, lines, 1, "want one line, got:\n%s", out)
	assert.True(t, strings.HasPrefix(lines[0], `billing: handler`), "the cause first: %s", lines[0])
	assert.Contains(t, lines[0], `"billing"`)
	assert.NotContains(t, out, "could not build")
	assert.NotContains(t, out, ".go:", "no source positions of fx's")
}

func handlesAndServesOps(t *testing.T, bin string) {
	_, broker := proctest.Broker(t, "")
	ops := proctest.FreeAddr(t)
	svc := proctest.Start(t, bin, proctest.Env("EVENTFX_KAFKA_BROKERS", broker, "EVENTFX_HTTP_ADDR", ops, "EVENTFX_SERVICE", "billing"))
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + ops + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "/readyz of the five-minute service never answered 200:\n%s", svc.Output())

	cli := proctest.Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	out, code := proctest.Run(t, 30*time.Second, nil, nil, cli, "publish", "--brokers", broker,
		"--topic", "orders", "--correlation-id", "conv-1", `{"id":"o-1","amount":5}`)
	require.Equal(t, 0, code, out)
	svc.WaitOutput(`level=INFO msg=billing service=billing handler=billing topic=orders message_id=\S+ correlation_id=conv-1 attempt=1 order=o-1 amount=5`, 30*time.Second)

	svc.Signal(syscall.SIGTERM)
	assert.Equal(t, 0, svc.Wait(30*time.Second), svc.Output())
}

func TestExamplesSayOnceWhyTheyCannotStart(t *testing.T) {
	for _, example := range []string{"quickstart", "orders"} {
		t.Run(example, func(t *testing.T) {
			bin := proctest.Build(t, "github.com/eventfx/eventfx/examples/"+example)
			nobody := proctest.FreeAddr(t)
			out, code := proctest.Run(t, 60*time.Second, nil, proctest.Env("EVENTFX_KAFKA_BROKERS", nobody), bin)
			assert.Equal(t, 1, code, out)
			lines := proctest.Lines(out)
			require.Len(t, lines, 1, "want one line, got:\n%s", out)
			assert.Contains(t, lines[0], "start failed")
			assert.Contains(t, lines[0], nobody)
		})
	}
}
