package interop_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/kafkatest"
)

// kafka-python 2.0.2 asks for metadata with Metadata v0–v3, which cannot
// ask for auto-creation: Kafka creates the topic anyway
// (auto.create.topics.enable), and so does the embedded broker.
func TestKafkaPythonProducesToATopicThatDoesNotExistYet(t *testing.T) {
	python := need(t, "/usr/bin/python3", "python3")
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		t.Skip("kafka-python is not installed (Debian package python3-kafka; CI installs it)")
	}
	addr := kafkatest.Broker(t)
	to := kafkatest.Unique("new")
	script := `
import sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=sys.argv[1], acks='all', max_block_ms=15000)
p.send(sys.argv[2], key=b'k', value=b'hello').get(timeout=15)
p.close()
`
	out, err := exec.Command(python, "-c", script, addr, to).CombinedOutput()
	require.NoError(t, err, "kafka-python: %s", out)
	recs := kafkatest.Read(t, addr, to, 1, 10*time.Second)
	assert.Equal(t, "hello", string(recs[0].Value))
}
