package console

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/announcement"
)

// announcementsRead bounds the records of eventfx.services read per
// partition per sample: the latest, which hold every live instance's last
// heartbeats (the topic is compacted; an instance writes one record per
// interval).
const announcementsRead = 5000

// Instance states in the topology.
const (
	InstanceRunning = "running"
	// InstanceStopped: it announced a graceful stop.
	InstanceStopped = "stopped"
	// InstanceMissing: no heartbeat for three of its intervals.
	InstanceMissing = "missing"
)

// Topology is what runs: services, their instances and handlers, and the
// topics between them.
type Topology struct {
	Services []Service  `json:"services"`
	Topics   []TopicRef `json:"topics"`
}

// Service is one service and what its instances announced.
type Service struct {
	Name      string     `json:"name"`
	Instances []Instance `json:"instances"`
	// Handlers are those of every instance, each once, with the state of
	// its lag (see HandlerLag.State).
	Handlers []HandlerRef `json:"handlers"`
}

// Instance is one instance of a service, as it last announced itself.
type Instance struct {
	ID             string                 `json:"id"`
	Version        string                 `json:"version"`
	EventfxVersion string                 `json:"eventfx_version,omitempty"`
	Host           string                 `json:"host"`
	PID            int                    `json:"pid"`
	State          string                 `json:"state"`
	StartedAt      time.Time              `json:"started_at"`
	Heartbeat      time.Time              `json:"heartbeat"`
	Interval       string                 `json:"interval"`
	PoisonTopic    string                 `json:"poison_topic"`
	Handlers       []announcement.Handler `json:"handlers"`
}

// HandlerRef is a handler of a service.
type HandlerRef struct {
	Service       string `json:"service"`
	Name          string `json:"name"`
	Topic         string `json:"topic"`
	PublishTopic  string `json:"publish_topic,omitempty"`
	ConsumerGroup string `json:"consumer_group"`
	Consume       string `json:"consume"`
	// Instances counts the running instances that run it.
	Instances int `json:"instances"`
	// State is its lag's state (HandlerLag.State); "" before the first
	// sample of its group.
	State string `json:"state"`
}

// TopicRef is a topic and the handlers on either side of it, as
// "<service>.<handler>".
type TopicRef struct {
	Name        string   `json:"name"`
	ConsumedBy  []string `json:"consumed_by"`
	PublishedBy []string `json:"published_by"`
}

// readAnnouncements returns the latest announcement of each instance
// among the last records of eventfx.services.
func (c *Console) readAnnouncements(ctx context.Context) ([]announcement.Announcement, error) {
	spans, err := c.tailSpans(ctx, announcement.Topic, announcementsRead)
	if err != nil || len(spans) == 0 {
		return nil, err
	}
	latest := map[string]announcement.Announcement{}
	err = c.scan(ctx, map[string]map[int32]span{announcement.Topic: spans}, func(r *kgo.Record) bool {
		a, err := announcement.Parse(r)
		if err != nil {
			if r.Value == nil { // a tombstone: the instance is gone
				delete(latest, string(r.Key))
			}
			return true
		}
		if l, ok := latest[a.Key()]; !ok || !a.Heartbeat.Before(l.Heartbeat) {
			latest[a.Key()] = a
		}
		return true
	})
	out := make([]announcement.Announcement, 0, len(latest))
	for _, a := range latest {
		out = append(out, a)
	}
	return out, err
}

// topology builds the topology of the announcements at now: instances
// aged out are left out.
func (c *Console) topology(as []announcement.Announcement, now time.Time) Topology {
	byService := map[string]*Service{}
	handlers := map[string]*HandlerRef{} // by service + "\x00" + handler
	topics := map[string]*TopicRef{}
	topic := func(name string) *TopicRef {
		t := topics[name]
		if t == nil {
			t = &TopicRef{Name: name, ConsumedBy: []string{}, PublishedBy: []string{}}
			topics[name] = t
		}
		return t
	}
	for _, a := range as {
		state := InstanceRunning
		switch {
		case a.State == announcement.StateStopping:
			state = InstanceStopped
		case now.Sub(a.Heartbeat) > 3*time.Duration(a.Interval):
			state = InstanceMissing
		}
		if state != InstanceRunning && now.Sub(a.Heartbeat) > c.o.AgeOut {
			continue
		}
		s := byService[a.Service]
		if s == nil {
			s = &Service{Name: a.Service}
			byService[a.Service] = s
		}
		s.Instances = append(s.Instances, Instance{
			ID: a.Instance, Version: a.Version, EventfxVersion: a.EventfxVersion, Host: a.Host, PID: a.PID,
			State: state, StartedAt: a.StartedAt, Heartbeat: a.Heartbeat, Interval: time.Duration(a.Interval).String(),
			PoisonTopic: a.PoisonTopic, Handlers: orEmpty(a.Handlers),
		})
		for _, h := range a.Handlers {
			k := a.Service + "\x00" + h.Name
			ref := handlers[k]
			if ref == nil {
				ref = &HandlerRef{Service: a.Service, Name: h.Name, Topic: h.Topic, PublishTopic: h.PublishTopic, ConsumerGroup: h.ConsumerGroup, Consume: h.Consume}
				handlers[k] = ref
				full := a.Service + "." + h.Name
				topic(h.Topic).ConsumedBy = append(topic(h.Topic).ConsumedBy, full)
				if h.PublishTopic != "" {
					topic(h.PublishTopic).PublishedBy = append(topic(h.PublishTopic).PublishedBy, full)
				}
			}
			if state == InstanceRunning {
				ref.Instances++
			}
		}
	}
	var t Topology
	for _, h := range handlers {
		s := byService[h.Service]
		s.Handlers = append(s.Handlers, *h)
	}
	for _, s := range byService {
		slices.SortFunc(s.Instances, func(a, b Instance) int { return a.StartedAt.Compare(b.StartedAt) })
		slices.SortFunc(s.Handlers, func(a, b HandlerRef) int { return cmp.Compare(a.Name, b.Name) })
		if s.Handlers == nil {
			s.Handlers = []HandlerRef{}
		}
		t.Services = append(t.Services, *s)
	}
	slices.SortFunc(t.Services, func(a, b Service) int { return cmp.Compare(a.Name, b.Name) })
	for _, tp := range topics {
		slices.Sort(tp.ConsumedBy)
		slices.Sort(tp.PublishedBy)
		t.Topics = append(t.Topics, *tp)
	}
	slices.SortFunc(t.Topics, func(a, b TopicRef) int { return cmp.Compare(a.Name, b.Name) })
	if t.Services == nil {
		t.Services = []Service{}
	}
	if t.Topics == nil {
		t.Topics = []TopicRef{}
	}
	return t
}
