// Package handwritten is the gateway a team would write by hand, without
// eventfx: net/http's ServeMux routes POST /v1/events/{topic}, the body is
// read whole, one franz-go client writes it as the value of one record with
// acks from all in-sync replicas (ProduceSync, so the 202 follows the
// broker's acknowledgement, as eventfx's gateway), and the answer is a
// small JSON object with the event's ID and topic.
//
// It is the baseline of BenchmarkGateway (internal/benchmarks) and of
// `eventfx bench gateway --compare`: minimal but correct, with none of
// eventfx's features (no authentication, topic policy, header checks,
// correlation IDs, metrics, tracing or logs). It is not part of any
// service.
package handwritten

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxBody bounds a request body, as any gateway must (eventfx's default
// publisher.max_body_bytes).
const maxBody = 1 << 20

// Gateway is the hand-written gateway: an http.Handler over one franz-go
// client. It is safe for concurrent use.
type Gateway struct {
	cl  *kgo.Client
	mux *http.ServeMux
}

// New returns a gateway producing to brokers. The client creates the topic
// of a first event if the broker allows it. Close closes it.
func New(brokers ...string) (*Gateway, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	g := &Gateway{cl: cl, mux: http.NewServeMux()}
	g.mux.HandleFunc("POST /v1/events/{topic}", g.publish)
	return g, nil
}

// ServeHTTP routes the request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// Close closes the Kafka client.
func (g *Gateway) Close() { g.cl.Close() }

// accepted is the body of a 202 answer.
type accepted struct {
	ID    string `json:"id"`
	Topic string `json:"topic"`
}

// publish writes the body to the path's topic and answers 202 once the
// broker acknowledged it, 503 if it did not.
func (g *Gateway) publish(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) == 0 {
		http.Error(w, "empty body", http.StatusBadRequest)
		return
	}
	id := uuid.NewString()
	rec := &kgo.Record{Topic: topic, Value: body, Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(id)}}}
	if err := g.cl.ProduceSync(r.Context(), rec).FirstErr(); err != nil {
		http.Error(w, "not acknowledged: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(accepted{ID: id, Topic: topic})
}
