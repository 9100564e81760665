package main_test

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/proctest"
)

func TestConsoleWithoutBrokerIsAOneLineError(t *testing.T) {
	r := run(t, nil, "console", "--brokers", "127.0.0.1:1", "--addr", "127.0.0.1:0")
	assert.NotEqual(t, 0, r.code)
	require.Len(t, lines(r.stderr), 1, r.String())
	assert.Contains(t, r.stderr, "no Kafka broker answered at 127.0.0.1:1")
}

func TestConsoleRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"console", "--addr", "nowhere"},
		{"console", "--sample-every", "1ms"},
	} {
		r := run(t, nil, args...)
		assert.NotEqual(t, 0, r.code, r.String())
		assert.Len(t, lines(r.stderr), 1, r.String())
	}
}

func TestConsoleServesAndStops(t *testing.T) {
	addr := broker(t)
	kafkatest.Produce(t, addr, poisonRecord{id: "id-1", topic: "orders", handler: "bill", reason: "boom", correlationID: "c-1", payload: "{}", attempts: "3"}.record("eventfx.poison"))
	bin := proctest.Build(t, eventfxPkg)
	consoleAddr := proctest.FreeAddr(t)
	p := proctest.Start(t, bin, []string{"EVENTFX_CONFIG=", "EVENTFX_CONSOLE_TOKEN=tok"}, "console", "--brokers", addr, "--addr", consoleAddr, "--read-only")
	p.WaitOutput(`eventfx console on http://`+consoleAddr, 20*time.Second)
	base := "http://" + consoleAddr

	res, err := http.Get(base + "/api/poison/groups")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, string(body))
	assert.Contains(t, string(body), `"count": 1`)

	post := func(token string) int {
		req, err := http.NewRequest(http.MethodPost, base+"/api/poison/replay", strings.NewReader(`{"group":"0123456789ab","dry_run":true}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, post(""), "the token from EVENTFX_CONSOLE_TOKEN")
	assert.Equal(t, http.StatusForbidden, post("tok"), "--read-only")

	p.Signal(syscall.SIGTERM)
	assert.Equal(t, 0, p.Wait(10*time.Second), p.Output())
}
