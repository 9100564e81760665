package main_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/proctest"
)

func TestPublisherAnswersUnknownPathsAndMethodsInJSON(t *testing.T) {
	t.Parallel()
	_, broker := proctest.Broker(t, "")
	g := startGateway(t, broker, nil)

	tests := []struct {
		name, method, path string
		want               int
		wantError, allow   string
	}{
		{"unknown path", http.MethodGet, "/v2/things", http.StatusNotFound, "no such endpoint", ""},
		{"POST to an unknown path", http.MethodPost, "/events/orders", http.StatusNotFound, "no such endpoint", ""},
		{"GET on the API", http.MethodGet, "/v1/events/orders", http.StatusMethodNotAllowed, "use POST", http.MethodPost},
		{"PUT on the API", http.MethodPut, "/v1/events/orders", http.StatusMethodNotAllowed, "use POST", http.MethodPost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, g.url+tt.path, strings.NewReader("x"))
			require.NoError(t, err)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tt.want, res.StatusCode)
			assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			assert.Equal(t, tt.allow, res.Header.Get("Allow"))
			var body map[string]string
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			assert.Contains(t, body["error"], tt.wantError)
		})
	}
	// The ops endpoints are untouched.
	code, metrics := g.get(t, "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, metrics, "go_goroutines")
	code, _ = g.get(t, "/healthz")
	assert.Equal(t, http.StatusOK, code)
}
