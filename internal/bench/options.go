package bench

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/broker"
)

// Options are what a run measures. Zero values are not defaults: the
// command sets every field (see Defaults).
type Options struct {
	// Messages to publish and consume; Size of each payload in bytes;
	// Batch messages per PublishMessages call; Keys distinct partition keys
	// used in turn (0: unkeyed).
	Messages, Size, Batch, Keys int
	// Partitions of the topic the run creates.
	Partitions int
	// Rate paces the publishing at Rate messages per second (an open
	// loop: see Run); 0 publishes as fast as the acknowledgements allow,
	// one PublishMessages call of Batch messages at a time.
	Rate int
	// Topic to use; "" creates eventfx.bench.<random>.
	Topic string
	// Acks overrides kafka.acks when not empty.
	Acks string
	// Timeout bounds the whole run, setup included.
	Timeout time.Duration
	// Brokers to measure; empty starts an embedded broker in the process.
	Brokers []string
	// Config is the service's config (kafka.* settings: TLS, SASL, consume
	// mode, timeouts); Brokers replaces its kafka.brokers.
	Config config.Config
}

// Defaults are the command's defaults.
func Defaults() Options {
	return Options{Messages: 100000, Size: 256, Batch: 1000, Partitions: broker.DefaultPartitions, Timeout: 2 * time.Minute}
}

// Validate reports every bad field, naming the command's flags, on one line.
func (o Options) Validate() error {
	var errs []error
	for _, x := range []struct {
		flag     string
		val, min int
	}{{"--messages", o.Messages, 1}, {"--size", o.Size, 1}, {"--batch", o.Batch, 1}, {"--partitions", o.Partitions, 1}, {"--keys", o.Keys, 0}} {
		if x.val < x.min {
			errs = append(errs, fmt.Errorf("%s must be at least %d, got %d", x.flag, x.min, x.val))
		}
	}
	if o.Rate < 0 {
		errs = append(errs, RateError(o.Rate))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout must be positive, got %s", o.Timeout))
	} else if o.Rate > 0 && o.Messages > 0 && o.schedule() >= o.Timeout {
		errs = append(errs, fmt.Errorf("--messages %d at --rate %d take %s to publish, not less than --timeout %s",
			o.Messages, o.Rate, o.schedule(), o.Timeout))
	}
	if o.Topic != "" {
		if err := config.ValidTopicName(o.Topic); err != nil {
			errs = append(errs, fmt.Errorf("--topic: %w", err))
		}
	}
	if o.Acks != "" && o.Acks != config.AcksAll && o.Acks != config.AcksLeader {
		errs = append(errs, fmt.Errorf("--acks must be %s or %s, got %q", config.AcksAll, config.AcksLeader, o.Acks))
	}
	return JoinOneLine(errs)
}

// RateError is the error of a --rate that is not positive (the command
// reports --rate 0 too: 0 is the unpaced default only when --rate is not
// given).
func RateError(rate int) error {
	return fmt.Errorf("--rate must be positive (messages per second), got %d", rate)
}

// schedule is how long a paced run's publishing lasts: the last message is
// due (Messages-1)/Rate after the first, and one interval after it is
// the end of the schedule.
func (o Options) schedule() time.Duration {
	return due(o.Messages, o.Rate)
}

// due is when message i of a run paced at rate per second is due, from
// the first's send.
func due(i, rate int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / float64(rate))
}

// JoinOneLine joins errors with "; ", keeping the CLI's errors on one line.
func JoinOneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// RandomSuffix is 12 random hex digits.
func RandomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
