// Package announcement is how eventfx services say that they run: each
// instance writes an Announcement (who it is, its handlers, their topics
// and consumer groups) to the compacted topic eventfx.services at start,
// again every Interval as a heartbeat, and a last one with State
// StateStopping at a graceful stop. The record's key is
// "<service>/<instance>", so compaction keeps the latest record of each
// instance. The console reads the topic to draw the topology; an instance
// whose heartbeat is older than a few intervals is gone.
//
// Announcing is best effort: an Announcer never fails or slows down its
// service; a write that fails is logged and tried again at the next
// heartbeat.
package announcement

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic is the compacted topic of the announcements.
const Topic = "eventfx.services"

// DefaultInterval is how often an instance announces itself again.
const DefaultInterval = 10 * time.Second

// States of an instance, as it announces them.
const (
	// StateRunning: the instance runs; each heartbeat says so again.
	StateRunning = "running"
	// StateStopping: the instance is stopping gracefully; it writes no
	// more heartbeats.
	StateStopping = "stopping"
)

// Announcement is one record of Topic: an instance of a service and what
// it runs.
type Announcement struct {
	// Service is the service's name (config "service").
	Service string `json:"service"`
	// Instance tells the service's instances apart: "<host>-<pid>-<random>",
	// new at each start.
	Instance string `json:"instance"`
	// Version is the version of the service's main module ("(devel)" for
	// a build outside a module version), EventfxVersion eventfx's.
	Version        string `json:"version"`
	EventfxVersion string `json:"eventfx_version,omitempty"`
	// Host and PID are where the instance runs.
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// State is StateRunning or StateStopping.
	State string `json:"state"`
	// StartedAt is when the instance started, Heartbeat when it wrote this
	// record, Interval how often it writes one (so a reader knows when a
	// heartbeat is late).
	StartedAt time.Time `json:"started_at"`
	Heartbeat time.Time `json:"heartbeat"`
	Interval  Duration  `json:"interval"`
	// PoisonTopic is where its handlers poison messages.
	PoisonTopic string `json:"poison_topic"`
	// Handlers are the handlers it runs; none for a service that only
	// publishes.
	Handlers []Handler `json:"handlers"`
}

// Handler is one handler of an instance.
type Handler struct {
	Name string `json:"name"`
	// Topic is consumed, PublishTopic receives what the handler emits
	// ("" when it emits nothing).
	Topic        string `json:"topic"`
	PublishTopic string `json:"publish_topic,omitempty"`
	// ConsumerGroup is the handler's consumer group.
	ConsumerGroup string `json:"consumer_group"`
	// Consume is the consumption mode: "partition" or "key".
	Consume string `json:"consume"`
}

// Key is the record key of a: "<service>/<instance>".
func (a Announcement) Key() string { return a.Service + "/" + a.Instance }

// Record returns a as a record of Topic.
func (a Announcement) Record() *kgo.Record {
	v, _ := json.Marshal(a) // plain fields: cannot fail
	return &kgo.Record{Topic: Topic, Key: []byte(a.Key()), Value: v}
}

// Parse reads a record of Topic. A tombstone (no value) is an error, as
// is a value that is not an Announcement or lacks a service or instance.
func Parse(r *kgo.Record) (Announcement, error) {
	var a Announcement
	if r.Value == nil {
		return a, fmt.Errorf("announcement %q at %d/%d: a tombstone", r.Key, r.Partition, r.Offset)
	}
	if err := json.Unmarshal(r.Value, &a); err != nil {
		return a, fmt.Errorf("announcement %q at %d/%d: %w", r.Key, r.Partition, r.Offset, err)
	}
	if a.Service == "" || a.Instance == "" {
		return a, fmt.Errorf("announcement %q at %d/%d: no service or instance", r.Key, r.Partition, r.Offset)
	}
	return a, nil
}

// Duration is a time.Duration written in JSON as Go writes it ("10s").
type Duration time.Duration

// MarshalJSON writes d as a string such as "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string such as "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
