package console_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfx/eventfx/internal/announcement"
	"github.com/eventfx/eventfx/internal/console"
	"github.com/eventfx/eventfx/internal/kafkatest"
	"github.com/eventfx/eventfx/internal/poison"
)

const orders = 6

func handlerLag(l console.Lag, name string) console.HandlerLag {
	for _, h := range l.Handlers {
		if h.Handler == name {
			return h
		}
	}
	return console.HandlerLag{}
}

// poisonedGroup waits for the one failure group of notify to hold n
// pending messages and returns it.
func (s *system) poisonedGroup(t *testing.T, n int) console.PoisonGroup {
	t.Helper()
	var gs console.PoisonGroups
	eventually(t, fmt.Sprintf("a group of %d pending messages", n), func() (bool, string) {
		s.get(t, "/api/poison/groups", &gs)
		return len(gs.Groups) == 1 && gs.Groups[0].Pending == n, jsonString(gs)
	})
	return gs.Groups[0]
}

func TestAPIOnARunningService(t *testing.T) {
	s := startSystem(t, "s3cret")
	s.publishOrders(t, orders)

	t.Run("topology", func(t *testing.T) {
		var top console.TopologyAnswer
		eventually(t, "the service's three handlers", func() (bool, string) {
			s.get(t, "/api/topology", &top)
			return len(top.Services) == 1 && len(top.Services[0].Handlers) == 3, jsonString(top)
		})
		svc := top.Services[0]
		assert.Equal(t, s.service, svc.Name)
		require.Len(t, svc.Instances, 1)
		assert.Equal(t, console.InstanceRunning, svc.Instances[0].State)
		var names []string
		for _, h := range svc.Handlers {
			names = append(names, h.Name+":"+h.Topic+">"+h.PublishTopic+"@"+h.ConsumerGroup)
		}
		assert.Equal(t, []string{
			"audit:" + s.payments + ">@" + s.service + ".audit",
			"bill:" + s.orders + ">" + s.payments + "@" + s.service + ".bill",
			"notify:" + s.orders + ">@" + s.service + ".notify",
		}, names)
		var topics []string
		for _, tp := range top.Topics {
			topics = append(topics, tp.Name+" in:"+strings.Join(tp.PublishedBy, ",")+" out:"+strings.Join(tp.ConsumedBy, ","))
		}
		assert.Equal(t, []string{
			s.orders + " in: out:" + s.service + ".bill," + s.service + ".notify",
			s.payments + " in:" + s.service + ".bill out:" + s.service + ".audit",
		}, topics)
	})

	t.Run("lag and states", func(t *testing.T) {
		var l console.Lag
		eventually(t, "audit stalled, notify failing, bill idle", func() (bool, string) {
			s.get(t, "/api/lag", &l)
			return handlerLag(l, "audit").State == console.StateStalled &&
				handlerLag(l, "notify").State == console.StateFailing &&
				handlerLag(l, "bill").State == console.StateIdle, jsonString(l)
		})
		audit := handlerLag(l, "audit")
		// The first payment is stuck in the handler: all of them are
		// unconsumed (nothing committed past them).
		assert.Equal(t, int64(orders), audit.Lag, "audit's lag: %s", jsonString(audit))
		assert.Greater(t, audit.LagSeconds, 0.0, "the oldest unconsumed payment has an age")
		assert.NotEmpty(t, audit.History, "a sparkline")
		assert.Equal(t, orders, handlerLag(l, "notify").Poisoned)
		assert.Equal(t, int64(0), handlerLag(l, "bill").Lag)
		var stalled int
		for _, p := range audit.Partitions {
			if p.State == console.StateStalled {
				stalled++
				assert.Positive(t, p.Lag)
			}
		}
		assert.Positive(t, stalled)
		var top console.TopologyAnswer
		s.get(t, "/api/topology", &top)
		states := map[string]string{}
		for _, h := range top.Services[0].Handlers {
			states[h.Name] = h.State
		}
		assert.Equal(t, map[string]string{"audit": console.StateStalled, "bill": console.StateIdle, "notify": console.StateFailing}, states, "the topology shows each handler's state")
	})

	g := s.poisonedGroup(t, orders)
	t.Run("poison groups and messages", func(t *testing.T) {
		assert.Equal(t, s.orders, g.Topic)
		assert.Equal(t, "notify", g.Handler)
		assert.Contains(t, g.Reason, "422")
		assert.Equal(t, []string{s.service}, g.Services)
		var gm console.GroupMessages
		require.Equal(t, http.StatusOK, s.get(t, "/api/poison/groups/"+g.Group+"/messages", &gm))
		require.Len(t, gm.Messages, orders)
		m := gm.Messages[0]
		assert.Equal(t, s.orders, m.OriginalTopic)
		assert.Equal(t, s.service+".notify", m.ConsumerGroup)
		assert.True(t, m.JSON)
		assert.Contains(t, m.Payload, "\n  \"id\": \"order-", "the payload pretty-printed")
		assert.True(t, strings.HasPrefix(m.CorrelationID, "conv-"))

		var e map[string]string
		assert.Equal(t, http.StatusNotFound, s.get(t, "/api/poison/groups/000000000000/messages", &e))
		assert.Equal(t, http.StatusBadRequest, s.get(t, "/api/poison/groups/nothex/messages", &e))
		assert.Contains(t, e["error"], "not a group ID")
	})

	t.Run("mutations are guarded", func(t *testing.T) {
		body := `{"group":"` + g.Group + `","dry_run":true}`
		tests := []struct {
			name    string
			body    string
			headers []string
			status  int
		}{
			{"no token", body, []string{"Content-Type", "application/json"}, http.StatusUnauthorized},
			{"wrong token", body, []string{"Content-Type", "application/json", "Authorization", "Bearer nope"}, http.StatusUnauthorized},
			{"a form post", body, []string{"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Bearer s3cret"}, http.StatusUnsupportedMediaType},
			{"cross-origin", body, []string{"Content-Type", "application/json", "Authorization", "Bearer s3cret", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
			{"unknown field", `{"grup":"x"}`, []string{"Content-Type", "application/json", "Authorization", "Bearer s3cret"}, http.StatusBadRequest},
			{"nothing chosen", `{"dry_run":true}`, []string{"Content-Type", "application/json", "Authorization", "Bearer s3cret"}, http.StatusBadRequest},
			{"a bad group", `{"group":"ZZ"}`, []string{"Content-Type", "application/json", "Authorization", "Bearer s3cret"}, http.StatusBadRequest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, answer := s.post(t, "/api/poison/replay", tt.body, tt.headers...)
				assert.Equal(t, tt.status, status, answer)
				assert.Contains(t, answer, `"error"`)
			})
		}
		res, err := http.Get(s.base + "/api/poison/replay")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "no mutation on GET")
		var e map[string]string
		assert.Equal(t, http.StatusNotFound, s.get(t, "/api/topics/no-such-topic/messages", &e))
		assert.Equal(t, http.StatusBadRequest, s.get(t, "/api/topics/"+s.orders+"/messages?header=Authorization=Bearer+x", &e),
			"a header shown masked cannot be probed by filtering on it")
		assert.Contains(t, e["error"], "holds a secret")
		var ts console.TopicList
		s.get(t, "/api/topics", &ts)
		for _, tp := range ts.Topics {
			assert.NotEqual(t, "no-such-topic", tp.Name, "a GET created a topic")
		}
		assert.Equal(t, orders, s.poisonedGroup(t, orders).Pending, "nothing was replayed")
	})

	auth := []string{"Content-Type", "application/json", "Authorization", "Bearer s3cret"}
	t.Run("dry run, then replay one message, then the group, never twice", func(t *testing.T) {
		status, answer := s.post(t, "/api/poison/replay", `{"group":"`+g.Group+`","dry_run":true}`, auth...)
		require.Equal(t, http.StatusOK, status, answer)
		assert.Contains(t, answer, `"replayed": 6`)
		assert.Contains(t, answer, `"action": "would replay"`)
		assert.Contains(t, answer, `"key": "eventfx_replayed"`, "the records as they would be republished")
		assert.Equal(t, orders, s.poisonedGroup(t, orders).Pending, "a dry run replays nothing")

		s.receiver.fixed.Store(true)
		status, answer = s.post(t, "/api/poison/replay", `{"ids":["order-2"],"by":"ops"}`, auth...)
		require.Equal(t, http.StatusOK, status, answer)
		assert.Contains(t, answer, `"replayed": 1`)
		assert.Contains(t, answer, `"by": "ops via eventfx console from 127.0.0.1"`)
		eventually(t, "order-2 delivered", func() (bool, string) {
			return slices.Contains(s.receiver.got(), "order-2"), fmt.Sprint(s.receiver.got())
		})
		assert.Equal(t, orders-1, s.poisonedGroup(t, orders-1).Pending, "the group shrinks")

		// The group, with its progress as a stream.
		status, answer = s.post(t, "/api/poison/replay", `{"group":"`+g.Group+`"}`, append(auth, "Accept", "application/x-ndjson")...)
		require.Equal(t, http.StatusOK, status, answer)
		lines := strings.Split(strings.TrimSpace(answer), "\n")
		require.Len(t, lines, 6, "five progress lines and the result: %s", answer)
		for i, l := range lines[:5] {
			assert.Contains(t, l, fmt.Sprintf(`{"progress":{"done":%d,"action":"replayed","id":"order-`, i+1))
		}
		assert.Contains(t, lines[5], `{"result":{"dry_run":false,`)
		assert.Contains(t, lines[5], `"replayed":5,"already_replayed":1`)
		s.poisonedGroup(t, 0)
		eventually(t, "every order delivered once", func() (bool, string) {
			got := s.receiver.got()
			return len(got) == orders, fmt.Sprint(got)
		})
		status, answer = s.post(t, "/api/poison/replay", `{"group":"`+g.Group+`"}`, auth...)
		require.Equal(t, http.StatusOK, status, answer)
		assert.Contains(t, answer, `"replayed": 0`)
		assert.Contains(t, answer, `"already_replayed": 6`)

		by := map[string]string{}
		for _, r := range kafkatest.Read(t, s.addr, poison.LedgerTopic(s.poisonTopic), orders, 10*time.Second) {
			e, err := poison.ParseEntry(r)
			require.NoError(t, err)
			by[e.ID] = e.By
		}
		assert.Equal(t, "ops via eventfx console from 127.0.0.1", by["order-2"], "the ledger says who")
		assert.Equal(t, "console user via eventfx console from 127.0.0.1", by["order-3"], "the ledger says who: %v", by)
	})

	t.Run("messages", func(t *testing.T) {
		var ms console.Messages
		require.Equal(t, http.StatusOK, s.get(t, "/api/topics/"+s.orders+"/messages?limit=2", &ms))
		assert.Len(t, ms.Messages, 2, "the newest two")
		assert.True(t, ms.Truncated)
		// Replays went back to orders: 6 + 6 records.
		require.Equal(t, http.StatusOK, s.get(t, "/api/topics/"+s.orders+"/messages?correlation_id=conv-4", &ms))
		require.Len(t, ms.Messages, 2, "conv-4 and its replay: %s", jsonString(ms))
		assert.Equal(t, "order-4", ms.Messages[0].ID)
		require.Equal(t, http.StatusOK, s.get(t, "/api/topics/"+s.orders+"/messages?header=eventfx_replayed=1&key=customer-1", &ms))
		for _, m := range ms.Messages {
			assert.Equal(t, "customer-1", m.Key)
		}
		assert.Len(t, ms.Messages, 2, "orders 1 and 4 are customer-1's")
		require.Equal(t, http.StatusOK, s.get(t, "/api/topics/"+s.orders+"/messages?partition=0&offset=0&limit=500", &ms))
		for _, m := range ms.Messages {
			assert.Equal(t, int32(0), m.Partition)
		}
		require.Equal(t, http.StatusOK, s.get(t, "/api/topics/"+s.orders+"/messages?time="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), &ms))
		assert.Empty(t, ms.Messages, "nothing after an hour from now")

		var e map[string]string
		for _, bad := range []string{"?limit=0", "?limit=x", "?partition=-2", "?offset=1&time=2026-12-03T00:00:00Z", "?time=yesterday", "?header=novalue", "?partition=99"} {
			assert.Equal(t, http.StatusBadRequest, s.get(t, "/api/topics/"+s.orders+"/messages"+bad, &e), bad)
			assert.NotEmpty(t, e["error"], bad)
		}
		assert.Equal(t, http.StatusNotFound, s.get(t, "/api/topics/no-such-topic/messages", &e))
		assert.Equal(t, http.StatusBadRequest, s.get(t, "/api/topics/bad%20name/messages", &e))
	})

	t.Run("conversation", func(t *testing.T) {
		var conv console.Conversation
		require.Equal(t, http.StatusOK, s.get(t, "/api/conversations/conv-3", &conv))
		var kinds []string
		for _, e := range conv.Entries {
			kinds = append(kinds, e.Kind+" "+e.Topic)
		}
		assert.ElementsMatch(t, []string{
			"event " + s.orders, "event " + s.payments, "poisoned " + s.poisonTopic,
			"replayed " + s.orders,
		}, kinds, "the replay reaches notify alone, so bill emits nothing again: %s", jsonString(conv))
		assert.Equal(t, "event "+s.orders, kinds[0], "time order: the order first")
		for _, e := range conv.Entries {
			if e.Kind == "poisoned" {
				assert.Equal(t, "notify", e.Handler)
			}
			if e.Topic == s.payments {
				assert.Equal(t, []string{s.service + ".bill"}, e.Emitted)
			}
		}
		var byID console.Conversation
		require.Equal(t, http.StatusOK, s.get(t, "/api/conversations/order-3", &byID))
		assert.Equal(t, "conv-3", byID.CorrelationID, "a message ID leads to its conversation")
		assert.Len(t, byID.Entries, len(conv.Entries))
	})
}

func TestReadOnlyRefusesReplay(t *testing.T) {
	addr := kafkatest.Broker(t)
	client, err := poison.Dial(t.Context(), []string{addr}, kafkatest.Config(addr).Kafka)
	require.NoError(t, err)
	defer client.Close()
	c, err := console.New(console.Options{Client: client, ReadOnly: true})
	require.NoError(t, err)
	defer c.Close()
	s := &system{base: serve(t, c)}
	status, answer := s.post(t, "/api/poison/replay", `{"group":"0123456789ab","dry_run":true}`, "Content-Type", "application/json")
	assert.Equal(t, http.StatusForbidden, status, answer)
	assert.Contains(t, answer, "read-only")

	req, err := http.NewRequest(http.MethodGet, s.base+"/api/topology", nil)
	require.NoError(t, err)
	req.Host = "attacker.example:8088"
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, "a loopback console refuses other host names (DNS rebinding)")
}

func TestGoneInstancesAgeOut(t *testing.T) {
	addr := kafkatest.Broker(t)
	now := time.Now().UTC()
	svc := kafkatest.Unique("old")
	rec := func(instance, state string, heartbeat time.Time) *kgo.Record {
		return announcement.Announcement{Service: svc, Instance: instance, State: state, StartedAt: heartbeat.Add(-time.Hour),
			Heartbeat: heartbeat, Interval: announcement.Duration(10 * time.Second)}.Record()
	}
	kafkatest.Produce(t, addr,
		rec("fresh", announcement.StateRunning, now),
		rec("late", announcement.StateRunning, now.Add(-time.Minute)),          // no heartbeat for 6 intervals
		rec("stopped", announcement.StateStopping, now.Add(-10*time.Second)),   // said it stops
		rec("gone", announcement.StateRunning, now.Add(-time.Hour)),            // aged out
		rec("gone-stopped", announcement.StateStopping, now.Add(-2*time.Hour)), // aged out
	)
	client, err := poison.Dial(t.Context(), []string{addr}, kafkatest.Config(addr).Kafka)
	require.NoError(t, err)
	defer client.Close()
	c, err := console.New(console.Options{Client: client, SampleEvery: 100 * time.Millisecond, AgeOut: 5 * time.Minute})
	require.NoError(t, err)
	defer c.Close()
	go c.Run(t.Context())
	s := &system{base: serve(t, c)}
	var top console.TopologyAnswer
	eventually(t, "the first sample", func() (bool, string) {
		s.get(t, "/api/topology", &top)
		return !top.SampledAt.IsZero(), jsonString(top)
	})
	require.Len(t, top.Services, 1, jsonString(top))
	states := map[string]string{}
	for _, in := range top.Services[0].Instances {
		states[in.ID] = in.State
	}
	assert.Equal(t, map[string]string{"fresh": console.InstanceRunning, "late": console.InstanceMissing, "stopped": console.InstanceStopped}, states)
}
