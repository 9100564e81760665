package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfx/eventfx/internal/keyorder"
)

// KeyModeGroup is the state of one key-mode handler's subscriber.
type KeyModeGroup struct {
	Group string
	Stats keyorder.Stats
}

// KeyMode is the prometheus.Collector of the key-mode subscribers
// (kafka.consume: key), read at scrape time:
//
//   - eventfx_key_mode_outstanding{group}: messages received from Kafka
//     and not handled yet (polling stops at 10,000);
//   - eventfx_key_mode_in_flight{group}: messages handed to the handler and
//     not acknowledged yet (at most kafka.max_in_flight);
//   - eventfx_key_mode_held{group,topic,partition}: handled messages whose
//     offsets cannot be committed yet because an earlier message of the
//     partition is not handled (a key retrying or stuck);
//   - eventfx_key_mode_paused{group,topic,partition}: 1 while fetching the
//     partition is paused because too many are held.
type KeyMode struct {
	groups                          func() []KeyModeGroup
	outstanding, inFlight, held, pz *prometheus.Desc
}

// NewKeyMode returns the collector of what groups reports.
func NewKeyMode(groups func() []KeyModeGroup) *KeyMode {
	part := []string{"group", "topic", "partition"}
	return &KeyMode{
		groups: groups,
		outstanding: prometheus.NewDesc("eventfx_key_mode_outstanding",
			"Key mode: messages received from Kafka and not handled yet.", []string{"group"}, nil),
		inFlight: prometheus.NewDesc("eventfx_key_mode_in_flight",
			"Key mode: messages handed to the handler and not acknowledged yet.", []string{"group"}, nil),
		held: prometheus.NewDesc("eventfx_key_mode_held",
			"Key mode: handled messages held behind an earlier one of their partition that is not handled yet (not committable).", part, nil),
		pz: prometheus.NewDesc("eventfx_key_mode_paused",
			"Key mode: 1 while fetching the partition is paused because too many of its messages are held.", part, nil),
	}
}

// Describe sends the descriptors.
func (k *KeyMode) Describe(ch chan<- *prometheus.Desc) {
	ch <- k.outstanding
	ch <- k.inFlight
	ch <- k.held
	ch <- k.pz
}

// Collect sends the current values.
func (k *KeyMode) Collect(ch chan<- prometheus.Metric) {
	for _, g := range k.groups() {
		ch <- prometheus.MustNewConstMetric(k.outstanding, prometheus.GaugeValue, float64(g.Stats.Outstanding), g.Group)
		ch <- prometheus.MustNewConstMetric(k.inFlight, prometheus.GaugeValue, float64(g.Stats.InFlight), g.Group)
		for _, p := range g.Stats.Partitions {
			id := strconv.FormatInt(int64(p.Partition), 10)
			ch <- prometheus.MustNewConstMetric(k.held, prometheus.GaugeValue, float64(p.Held), g.Group, p.Topic, id)
			paused := 0.0
			if p.Paused {
				paused = 1
			}
			ch <- prometheus.MustNewConstMetric(k.pz, prometheus.GaugeValue, paused, g.Group, p.Topic, id)
		}
	}
}
