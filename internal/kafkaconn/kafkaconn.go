// Package kafkaconn holds what every franz-go client of eventfx shares (the
// CLI, the poison tools, the lag collector): TLS and SASL from the config.
package kafkaconn

import (
	"fmt"
	"hash/fnv"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eventfx/eventfx/config"
)

// Security returns the client options for kafka.tls and kafka.sasl: TLS
// verifying the brokers (config.TLS.ClientConfig) and the SASL mechanism.
func Security(k config.Kafka) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if k.TLS.Enabled {
		tc, err := k.TLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch k.SASL.Mechanism {
	case "":
	case config.SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsMechanism()))
	case config.SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha256Mechanism()))
	case config.SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: unsupported %q", k.SASL.Mechanism)
	}
	return opts, nil
}

// Partitioner is how every eventfx producer partitions records: a keyed
// record by Sarama's hash partitioner (FNV-1a), as eventfx has always
// written them (watermill-kafka), so a key stays on its partition whoever
// writes it; an unkeyed one sticks to a partition per batch. (Java clients
// and librdkafka hash keys with murmur2 and CRC32: see the README.)
func Partitioner() kgo.Opt {
	return kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a)))
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(b)
	return h.Sum32()
}
