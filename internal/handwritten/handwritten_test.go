package handwritten_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/handwritten"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

func TestGatewayWritesTheBodyAndAnswers202(t *testing.T) {
	addr := kafkatest.Broker(t)
	g, err := handwritten.New(addr)
	require.NoError(t, err)
	t.Cleanup(g.Close)
	topic := kafkatest.Unique("handwritten")

	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/events/"+topic, strings.NewReader("hello")))

	require.Equal(t, http.StatusAccepted, rec.Code, "body: %s", rec.Body)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var got struct{ ID, Topic string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, topic, got.Topic)
	recs := kafkatest.Read(t, addr, topic, 1, 10*time.Second)
	require.Len(t, recs, 1)
	assert.Equal(t, "hello", string(recs[0].Value))
	assert.Equal(t, got.ID, kafkatest.Headers(recs[0])["id"])
}

func TestGatewayRefusesAnEmptyBody(t *testing.T) {
	g, err := handwritten.New("127.0.0.1:1")
	require.NoError(t, err)
	t.Cleanup(g.Close)
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/events/orders", strings.NewReader("")))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
}
