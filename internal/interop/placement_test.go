package interop_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

const partitions = 12

// need skips the test when bin is not installed.
func need(t *testing.T, bin, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s is not installed (Debian package %s; CI installs it)", bin, pkg)
	}
	return path
}

// topic creates a topic of 12 partitions.
func topic(t *testing.T, addr string) string {
	t.Helper()
	name := kafkatest.Unique("keys")
	adm := kadm.NewClient(kafkatest.Client(t, addr))
	_, err := adm.CreateTopic(context.Background(), partitions, 1, nil, name)
	require.NoError(t, err)
	return name
}

func testKeys() []string {
	ks := make([]string, 0, 200)
	for i := range 200 {
		ks = append(ks, fmt.Sprintf("customer-%d", i*7919))
	}
	return ks
}

// placed reads n records of topic and returns each key's partition.
func placed(t *testing.T, addr, topic string, n int) map[string]int32 {
	t.Helper()
	got := map[string]int32{}
	for _, r := range kafkatest.Read(t, addr, topic, n, 30*time.Second) {
		got[string(r.Key)] = r.Partition
	}
	require.Len(t, got, n, "distinct keys on %s", topic)
	return got
}

// eventfxPlaced publishes keys with eventfx's Publisher, partitioner
// name, and returns each key's partition.
func eventfxPlaced(t *testing.T, addr, name string, keys []string) map[string]int32 {
	t.Helper()
	cfg := kafkatest.Config(addr)
	cfg.Kafka.Partitioner = name
	var pub *app.Publisher
	a := fxtest.New(t, app.Core(cfg), app.KafkaModule, app.PublisherModule, fx.Populate(&pub))
	a.RequireStart()
	defer a.RequireStop()
	to := topic(t, addr)
	msgs := make([]*message.Message, len(keys))
	for i, k := range keys {
		msgs[i] = message.NewMessage(k, []byte("v"))
		msgs[i].Metadata.Set("_eventfx_key", k)
	}
	require.NoError(t, pub.PublishMessages(context.Background(), to, msgs...))
	return placed(t, addr, to, len(keys))
}

// same asserts that two placements put every key on the same partition,
// and that the keys spread (so agreement is not by accident).
func same(t *testing.T, theirs, ours map[string]int32, who string) {
	t.Helper()
	used := map[int32]bool{}
	for k, p := range theirs {
		assert.Equal(t, p, ours[k], "key %s: %s's partition vs eventfx's", k, who)
		used[p] = true
	}
	assert.Greater(t, len(used), partitions/2, "keys spread over the partitions")
}

func TestCRC32PlacesKeysWhereLibrdkafkaDoes(t *testing.T) {
	kcat := need(t, "kcat", "kcat")
	addr := kafkatest.Broker(t)
	keys := testKeys()
	to := topic(t, addr)
	var in strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&in, "%s:v\n", k)
	}
	cmd := exec.Command(kcat, "-b", addr, "-P", "-t", to, "-K", ":", "-X", "partitioner=consistent", "-X", "acks=all")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kcat: %s", out)
	same(t, placed(t, addr, to, len(keys)), eventfxPlaced(t, addr, config.PartitionerCRC32, keys), "librdkafka (consistent)")
}

func TestMurmur2PlacesKeysWhereKafkaPythonDoes(t *testing.T) {
	python := need(t, "/usr/bin/python3", "python3")
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		t.Skip("kafka-python is not installed (Debian package python3-kafka; CI installs it)")
	}
	addr := kafkatest.Broker(t)
	keys := testKeys()
	to := topic(t, addr)
	script := `
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1], acks='all')
for line in sys.stdin:
    p.send(sys.argv[2], key=line.strip().encode(), value=b'v')
p.flush()
p.close()
`
	cmd := exec.Command(python, "-c", script, addr, to)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kafka-python: %s", out)
	same(t, placed(t, addr, to, len(keys)), eventfxPlaced(t, addr, config.PartitionerMurmur2, keys), "kafka-python (Java's murmur2)")
}

func TestFNV1aPlacesKeysWhereSaramaDoes(t *testing.T) {
	addr := kafkatest.Broker(t)
	keys := testKeys()
	to := topic(t, addr)
	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Version = sarama.V2_1_0_0
	p, err := sarama.NewSyncProducer([]string{addr}, sc)
	require.NoError(t, err)
	for _, k := range keys {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: to, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder("v")})
		require.NoError(t, err)
	}
	require.NoError(t, p.Close())
	same(t, placed(t, addr, to, len(keys)), eventfxPlaced(t, addr, config.PartitionerFNV1a, keys), "Sarama (hash partitioner)")
}
