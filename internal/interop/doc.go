// Package interop holds the tests of eventfx against Kafka clients nobody
// on the team wrote: librdkafka (kcat), kafka-python and Sarama, on the
// embedded broker. A test whose client is not installed skips, saying
// which package installs it; CI installs them (.ci/run).
package interop
