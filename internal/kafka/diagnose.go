package kafka

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/meta"
)

// Unreachable says, on one line, that no broker of brokers answered (err
// is the last client error), and what it most likely means given the
// connection settings in k: the services' start and every CLI command
// report an unreachable cluster in these words. It never shows a password.
func Unreachable(brokers []string, k config.Kafka, err error) error {
	at := strings.Join(brokers, ",")
	cause := meta.OneLine(err.Error())
	if errors.Is(err, kerr.SaslAuthenticationFailed) {
		return unreachableError{fmt.Sprintf("the Kafka broker at %s refused SASL %s authentication as user %q (%s)", at, k.SASL.Mechanism, k.SASL.Username, cause), err}
	}
	var hints []string
	if k.SASL.Mechanism != "" {
		hints = append(hints, fmt.Sprintf("with SASL %s as user %q, wrong credentials (a broker may close the connection when authentication fails)", k.SASL.Mechanism, k.SASL.Username))
	}
	if k.TLS.Enabled {
		hints = append(hints, "with TLS, a certificate the broker or eventfx does not trust (kafka.tls.ca_file, cert_file, key_file)")
	}
	if len(hints) == 0 {
		return unreachableError{fmt.Sprintf("no Kafka broker answered at %s (%s)", at, cause), err}
	}
	return unreachableError{fmt.Sprintf("no Kafka broker answered at %s (%s); likely causes: %s", at, cause, strings.Join(hints, "; ")), err}
}

// unreachableError reads as Unreachable's line and unwraps to the client's
// error.
type unreachableError struct {
	msg string
	err error
}

func (e unreachableError) Error() string { return e.msg }
func (e unreachableError) Unwrap() error { return e.err }
