package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// screenshotsEnv names the directory the browser test writes the
// screenshots of each view to; unset, it writes none.
//
//	EVENTFX_CONSOLE_SCREENSHOTS=$PWD/docs/console go test -run TestBrowser ./internal/console
const screenshotsEnv = "EVENTFX_CONSOLE_SCREENSHOTS"

// chromium is the browser the test drives: Debian's chromium package.
const chromium = "/usr/bin/chromium"

// browser is a headless Chromium and what its pages reported as errors.
type browser struct {
	ctx  context.Context
	shot string // screenshots directory, "" for none
	base string // the console's URL

	mu     sync.Mutex
	errors []string
	// failed are the requests answered with an error status, which the
	// browser logs too: the test expects some (a refused replay).
	failed []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromium
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Skip("no Chromium: install Debian's chromium package (.ci/run does)")
		}
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.WindowSize(1360, 860),
		chromedp.Flag("disable-gpu", true),
		// No network beyond loopback: every request the pages make is
		// the console's.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	b := &browser{ctx: ctx, shot: os.Getenv(screenshotsEnv)}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start Chromium")
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.observe(m)
		}
	}()
	return b
}

// observe notes the console's errors and exceptions.
func (b *browser) observe(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case m.Type != chromedp.ConsoleError && !m.IsException():
	case m.Source == "network":
		b.failed = append(b.failed, strings.TrimPrefix(m.URL, b.base))
	default:
		b.errors = append(b.errors, m.String()+" at "+m.URL)
	}
}

// run runs actions with a deadline, failing the test with what the page
// reported if they fail.
func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		hctx, hcancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer hcancel()
		html, _ := chromedp.Run(hctx, chromedp.OuterHTML(chromedp.CSS("main")))
		b.mu.Lock()
		defer b.mu.Unlock()
		t.Fatalf("%s: %v\npage errors: %v\n<main>: %s", what, err, b.errors, html)
	}
}

// get runs one action with a value, as run does.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	var v T
	b.run(t, what, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var err error
		v, err = a(ctx, tg)
		return err
	}))
	return v
}

// screenshot saves the page as <name>.png when screenshots are asked for.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	if b.shot == "" {
		return
	}
	png := get(t, b, "screenshot "+name, chromedp.FullScreenshot(100))
	require.NoError(t, os.MkdirAll(b.shot, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644))
}

// noErrors fails the test if a page reported an error, or a request
// failed other than those expected.
func (b *browser) noErrors(t *testing.T, expectedFailures ...string) {
	t.Helper()
	// The browser reports them as they happen, a moment after.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b.mu.Lock()
		n := len(b.failed)
		b.mu.Unlock()
		if n >= len(expectedFailures) {
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.errors, "the pages reported errors")
	require.Equal(t, expectedFailures, b.failed, "requests that failed")
}

// textOf waits for sel and returns its text.
func (b *browser) textOf(t *testing.T, sel string) string {
	t.Helper()
	b.run(t, "wait for "+sel, visible(sel))
	return get(t, b, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// waitText waits until sel's text contains want. It asks again after a
// failed evaluation: a page that is being replaced (a form sent) has no
// context to evaluate in for a moment.
func (b *browser) waitText(t *testing.T, sel, want string) {
	t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want)
	deadline := time.Now().Add(waitFor)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t.Fatalf("waited %s for %q in %s (last error: %v); page errors: %v", waitFor, want, sel, last, b.errors)
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	s := startSystem(t, "t0ken")
	b.base = s.base
	s.publishOrders(t, orders)
	g := s.poisonedGroup(t, orders)

	t.Run("topology", func(t *testing.T) {
		b.run(t, "open the topology", chromedp.Navigate(s.base+"/"),
			visible(`svg#topology-graph g.node.handler[data-node="h:shop.audit"]`))
		// The states arrive with the samples; the page updates itself.
		b.run(t, "audit stalled, notify failing", visible(`g.node.state-stalled[data-node="h:shop.audit"]`),
			visible(`g.node.state-failing[data-node="h:shop.notify"]`))
		for _, node := range []string{"s:shop", "t:orders", "t:payments", "h:shop.bill"} {
			b.run(t, "node "+node, visible(`g.node[data-node="`+node+`"]`))
		}
		require.Contains(t, b.textOf(t, "#instances"), "running")
		b.screenshot(t, "topology")
	})

	t.Run("lag", func(t *testing.T) {
		b.run(t, "open lag", chromedp.Navigate(s.base+"/lag"), visible(`tr.handler`))
		b.waitText(t, `tr.handler[data-group="shop.audit"]`, "stalled")
		b.waitText(t, `tr.handler[data-group="shop.notify"]`, "failing")
		b.run(t, "a sparkline", visible(`tr.handler[data-group="shop.audit"] svg.spark polyline`))
		require.Contains(t, b.textOf(t, `tr.handler[data-group="shop.audit"] td.lag-total`), fmt.Sprint(orders))
		b.screenshot(t, "lag")
	})

	t.Run("poison group: dry run, then replay", func(t *testing.T) {
		b.run(t, "open poison", chromedp.Navigate(s.base+"/poison"), visible(`a.group-link`))
		require.Contains(t, b.textOf(t, `tr.group[data-group="`+g.Group+`"] td.pending`), fmt.Sprint(orders))
		b.screenshot(t, "poison")
		b.run(t, "follow the group", click(`a.group-link`), visible(`#summary`))
		require.Equal(t, fmt.Sprint(orders), b.textOf(t, "#pending-count"))
		b.run(t, "open a message", click(`tr.detail summary`), visible(`tr.detail pre.payload`))
		require.Contains(t, b.textOf(t, `tr.detail pre.payload`), `"id": "order-`)

		// Without the token, the console refuses; the page says so.
		b.run(t, "dry run without the token", click("#dry-run"))
		b.waitText(t, "#replay-summary", "HTTP 401")

		b.run(t, "the token and a name",
			chromedp.SendKeys(chromedp.CSS("#token"), "t0ken"),
			chromedp.SendKeys(chromedp.CSS("#by"), "ops"),
			click("#dry-run"))
		b.waitText(t, "#replay-summary", fmt.Sprintf("would replay %d", orders))
		b.waitText(t, "#replay-messages", "eventfx_replayed: 1")
		b.screenshot(t, "dry-run")
		// One chosen message: the dry run is of it alone.
		b.run(t, "choose a message", click("input.pick"), click("#dry-run"))
		b.waitText(t, "#replay-summary", "would replay 1, skipped 5 (already replayed 0, filtered 5)")
		b.run(t, "choose none again", click("input.pick"))
		require.Equal(t, fmt.Sprint(orders), b.textOf(t, "#pending-count"), "a dry run replays nothing")

		s.receiver.fixed.Store(true) // the cause is fixed
		b.run(t, "replay, with a confirmation", click("#replay"), visible("dialog#confirm[open]"))
		b.waitText(t, "#confirm-text", fmt.Sprintf("Replay %d messages", orders))
		b.screenshot(t, "confirm")
		b.run(t, "confirm", click("#confirm-replay"))
		b.waitText(t, "#replay-summary", fmt.Sprintf("replayed %d,", orders))
		b.waitText(t, "#replay-progress", fmt.Sprintf("Replaying… %d of %d", orders, orders))
		eventually(t, "the replayed orders delivered", func() (bool, string) {
			return len(s.receiver.got()) == orders, fmt.Sprint(s.receiver.got())
		})
		b.waitText(t, "#pending-count", "0") // the page updates itself
		require.NotContains(t, b.textOf(t, "#messages"), "pending", "every row says replayed")
		b.screenshot(t, "group")
	})

	t.Run("conversation from a poisoned message", func(t *testing.T) {
		b.run(t, "follow a conversation", click(`a.conversation-link`), visible(`#timeline li.entry`))
		timeline := b.textOf(t, "#timeline")
		for _, want := range []string{"event", "orders", "payments", "poisoned", "notify", "replayed", "emitted by shop.bill"} {
			require.Contains(t, timeline, want)
		}
		b.screenshot(t, "conversation")
	})

	t.Run("messages, and a conversation from one", func(t *testing.T) {
		b.run(t, "browse orders", chromedp.Navigate(s.base+"/messages?topic=orders&limit=20"), visible(`tr.record`))
		rows := get(t, b, "rows", chromedp.Nodes(chromedp.CSSAll(`tr.record`)))
		require.Len(t, rows, 2*orders, "the orders and their replays")
		b.screenshot(t, "messages")
		b.run(t, "filter by correlation ID", chromedp.SetValue(chromedp.CSS(`input[name="correlation_id"]`), "conv-1"),
			click("#browse"), visible(`#span`))
		b.waitText(t, "#span", "read, 2 shown") // the unfiltered page said "read, 12 shown"
		b.run(t, "a conversation from a message", click(`a.conversation-link`), visible(`#timeline li.entry`))
		require.Contains(t, b.textOf(t, "h1"), "conv-1")
		b.run(t, "a bad filter", chromedp.Navigate(s.base+"/messages?topic=orders&limit=nope"), visible(`#error`))
		require.Contains(t, b.textOf(t, "#error"), "limit")
	})

	b.noErrors(t, "/api/poison/replay", "/messages?topic=orders&limit=nope")
}
