package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eventfx/eventfx/internal/transport"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a publish, the outcome label of
// eventfx_messages_published_total.
const (
	// PublishPublished: the broker acknowledged the message.
	PublishPublished = "published"
	// PublishFailed: the publish returned an error.
	PublishFailed = "failed"
)

// MaxTopics bounds the topic label of the publish metrics: past that many
// distinct topics (a gateway open to any topic name), further topics are
// counted under OtherTopic.
const MaxTopics = 1000

// OtherTopic is the topic label of the topics past MaxTopics. It is not a
// legal Kafka topic name, so it names no real topic.
const OtherTopic = "(other)"

// Publishes are the publish metrics of a service, labelled by topic:
//
//   - eventfx_messages_published_total{outcome}: messages given to the
//     publisher, by outcome (PublishPublished, PublishFailed);
//   - eventfx_publish_duration_seconds: the duration of each Publish call
//     (one or more messages), until the broker's acknowledgement or the
//     error.
//
// They are the one definition of these names: everything that publishes
// through the transport (emitted events, app.Publisher, the gateway, the
// poison queue) is counted by the decorator, Wrap.
type Publishes struct {
	published *prometheus.CounterVec
	duration  *prometheus.HistogramVec

	topics sync.Map // topic → *topicSeries
	mu     sync.Mutex
	n      int // distinct topics stored, under mu
}

type topicSeries struct {
	published, failed prometheus.Counter
	duration          prometheus.Observer
}

// NewPublishes registers the publish metrics on reg.
func NewPublishes(reg prometheus.Registerer) (*Publishes, error) {
	p := &Publishes{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfx_messages_published_total",
			Help: "Messages published by the service (events, emitted events, poison writes), by topic and outcome: published (acknowledged) or failed.",
		}, []string{"topic", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventfx_publish_duration_seconds",
			Help:    "Duration of a publish call (one or more messages) until the broker's acknowledgement or the error, by topic.",
			Buckets: prometheus.DefBuckets,
		}, []string{"topic"}),
	}
	for _, c := range []prometheus.Collector{p.published, p.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register publish metrics: %w", err)
		}
	}
	return p, nil
}

// Wrap returns next, recording every publish in p. The result is safe for
// concurrent use if next is; its Close closes next.
func (p *Publishes) Wrap(next transport.Publisher) transport.Publisher {
	return &publisher{next: next, m: p}
}

// series returns topic's series, creating them (both outcomes, so that
// rate() sees zeros) the first time.
func (p *Publishes) series(topic string) *topicSeries {
	if s, ok := p.topics.Load(topic); ok {
		return s.(*topicSeries)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.topics.Load(topic); ok {
		return s.(*topicSeries)
	}
	label := topic
	if p.n >= MaxTopics {
		label = OtherTopic
	}
	s := &topicSeries{
		published: p.published.WithLabelValues(label, PublishPublished),
		failed:    p.published.WithLabelValues(label, PublishFailed),
		duration:  p.duration.WithLabelValues(label),
	}
	if label == topic {
		p.topics.Store(topic, s)
		p.n++
	}
	return s
}

type publisher struct {
	next transport.Publisher
	m    *Publishes
}

func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	return p.PublishContext(context.Background(), topic, msgs...)
}

func (p *publisher) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	s := p.m.series(topic)
	start := time.Now()
	err := p.next.PublishContext(ctx, topic, msgs...)
	s.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.failed.Add(float64(len(msgs)))
	} else {
		s.published.Add(float64(len(msgs)))
	}
	return err
}

func (p *publisher) Close() error { return p.next.Close() }
