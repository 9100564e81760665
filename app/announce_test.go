package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/announcement"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

// announcements reads every announcement of service on the broker at addr.
// It looks the topic up first: listing the offsets of a missing topic
// would create it (not compacted) on the embedded broker, before the
// service does.
func announcements(t *testing.T, addr, service string) []announcement.Announcement {
	t.Helper()
	topics, err := kadm.NewClient(kafkatest.Client(t, addr)).ListTopics(context.Background(), announcement.Topic)
	require.NoError(t, err)
	if topics[announcement.Topic].Err != nil {
		return nil
	}
	n := kafkatest.Count(t, addr, announcement.Topic)
	var out []announcement.Announcement
	for _, r := range kafkatest.Read(t, addr, announcement.Topic, int(n), 10*time.Second) {
		a, err := announcement.Parse(r)
		require.NoError(t, err)
		if a.Service == service {
			out = append(out, a)
		}
	}
	return out
}

func TestServiceAnnouncesItselfAtStartAndAtStop(t *testing.T) {
	addr := kafkatest.Broker(t)
	cfg := kafkatest.Config(addr)
	orders, payments := kafkatest.Unique("orders"), kafkatest.Unique("payments")
	bill := handlers.NewEmitting("bill", orders, payments, func(context.Context, Order) ([]Order, error) { return nil, nil })
	ship := handlers.New("ship", payments, func(context.Context, Order) error { return nil }, handlers.ConsumeByKey(8))
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.SubscriberModule, handlers.Register(bill, ship))
	a.RequireStart()

	var got []announcement.Announcement
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		got = announcements(t, addr, cfg.Service)
		return len(got) > 0
	}, func() string { return "no announcement of " + cfg.Service })
	first := got[0]
	assert.Equal(t, announcement.StateRunning, first.State)
	assert.NotEmpty(t, first.Instance)
	assert.Equal(t, cfg.Poison.Topic, first.PoisonTopic)
	assert.Equal(t, announcement.Duration(announcement.DefaultInterval), first.Interval)
	assert.False(t, first.StartedAt.IsZero())
	assert.ElementsMatch(t, []announcement.Handler{
		{Name: "bill", Topic: orders, PublishTopic: payments, ConsumerGroup: cfg.Service + ".bill", Consume: "partition"},
		{Name: "ship", Topic: payments, ConsumerGroup: cfg.Service + ".ship", Consume: "key"},
	}, first.Handlers)

	a.RequireStop()
	got = announcements(t, addr, cfg.Service)
	last := got[len(got)-1]
	assert.Equal(t, announcement.StateStopping, last.State, "the last announcement says the instance stops")
	assert.Equal(t, first.Key(), last.Key())

	// The topic is compacted: the latest record of each instance is kept.
	configs, err := kadm.NewClient(kafkatest.Client(t, addr)).DescribeTopicConfigs(context.Background(), announcement.Topic)
	require.NoError(t, err)
	policy, err := configs.On(announcement.Topic, nil)
	require.NoError(t, err)
	found := ""
	for _, c := range policy.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			found = *c.Value
		}
	}
	assert.Equal(t, "compact", found)
}

func TestAnAnnouncementsTopicNotCompactedIsReported(t *testing.T) {
	addr := kafkatest.Broker(t)
	_, err := kadm.NewClient(kafkatest.Client(t, addr)).CreateTopic(context.Background(), 1, -1, nil, announcement.Topic)
	require.NoError(t, err)
	cfg := kafkatest.Config(addr)
	var logs kafkatest.Buffer
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule,
		fx.Decorate(func() *slog.Logger { return slog.New(slog.NewTextHandler(&logs, nil)) }))
	a.RequireStart()
	defer a.RequireStop()
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "the announcements topic is not compacted")
	}, func() string { return "no warning; the log:\n" + logs.String() })
	assert.Contains(t, logs.String(), "cleanup_policy=delete")
	kafkatest.Eventually(t, 10*time.Second, func() bool {
		return len(announcements(t, addr, cfg.Service)) > 0
	}, func() string { return "the service announced nothing" })
}
