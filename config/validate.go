package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// FieldError is one problem with one configuration key. Path is the key's
// YAML path ("kafka.brokers[1]", "subscriber.routes[0].webhook.url"), or the
// name of an EVENTFX_ environment variable that matches no key. Msg never
// contains the value of a secret (passwords, tokens, webhook secrets and URLs).
type FieldError struct {
	Path string
	Msg  string
}

// Error returns "path: msg".
func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// FieldErrors returns every FieldError in err's tree, in order; it is how a
// caller lists the problems in an error from Validate, Load or LoadYAML.
func FieldErrors(err error) []FieldError {
	var out []FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// invalid joins problems into the one error Validate and Load return: a line
// "invalid config<where>:" followed by one line per FieldError.
func invalid(where string, problems []FieldError) error {
	if len(problems) == 0 {
		return nil
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return fmt.Errorf("invalid config%s:\n%w", where, errors.Join(errs...))
}

// Validate reports every invalid field of c at once, each as a FieldError
// naming the field by its YAML path, joined under an "invalid config:" line
// (see FieldErrors). It expects defaults applied: call it on
// c.WithDefaults(), as Load does; zero fields are otherwise reported.
func (c Config) Validate() error {
	var p problems
	p.config(c)
	return invalid("", p)
}

// problems collects FieldErrors; its methods check one part of a Config each.
type problems []FieldError

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) config(c Config) {
	p.name("service", c.Service)
	p.kafka(c.Kafka, c.Service)
	p.retry("retry", c.Retry, false)
	p.topic("poison.topic", c.Poison.Topic)
	p.schemaRegistry(c.SchemaRegistry)
	p.positive("shutdown_timeout", c.ShutdownTimeout)
	p.hostPort("http.addr", c.HTTP.Addr, true)
	p.console(c.Console)
	for i, t := range c.Publisher.AllowedTopics {
		path := fmt.Sprintf("publisher.allowed_topics[%d]", i)
		p.topic(path, t)
		if t == c.Poison.Topic {
			p.add(path, "must not be the poison topic")
		}
	}
	if c.Publisher.MaxBodyBytes <= 0 {
		p.add("publisher.max_body_bytes", "must be positive, got %d", c.Publisher.MaxBodyBytes)
	}
	p.positive("publisher.publish_timeout", c.Publisher.PublishTimeout)
	p.routes(c.Subscriber.Routes, c.Retry)
	p.outbox(c.Outbox)
	o := c.Observability
	p.oneOf("observability.log.level", o.Log.Level, LogDebug, LogInfo, LogWarn, LogError)
	p.oneOf("observability.log.format", o.Log.Format, LogText, LogJSON)
	p.oneOf("observability.tracing.exporter", o.Tracing.Exporter, ExporterNone, ExporterStdout, ExporterOTLP)
	if o.Tracing.Exporter == ExporterOTLP && o.Tracing.Endpoint == "" {
		p.add("observability.tracing.endpoint", "required when the exporter is otlp")
	}
	if o.Tracing.Endpoint != "" {
		p.hostPort("observability.tracing.endpoint", o.Tracing.Endpoint, false)
	}
	if o.Tracing.SampleRatio < 0 || o.Tracing.SampleRatio > 1 {
		p.add("observability.tracing.sample_ratio", "must be between 0 and 1, got %v", o.Tracing.SampleRatio)
	}
}

func (p *problems) kafka(k Kafka, service string) {
	switch {
	case len(k.Brokers) == 0:
		p.add("kafka.brokers", "required: host:port entries, or %q", Embedded)
	case len(k.Brokers) == 1 && k.Brokers[0] == Embedded: // the in-process broker
	default:
		for i, b := range k.Brokers {
			path := fmt.Sprintf("kafka.brokers[%d]", i)
			if b == Embedded {
				p.add(path, "%q must be the only broker", Embedded)
				continue
			}
			p.hostPort(path, b, false)
		}
	}
	if k.ConsumerGroup != "" && k.ConsumerGroup != service { // else reported as service
		p.name("kafka.consumer_group", k.ConsumerGroup)
	}
	p.oneOf("kafka.initial_offset", k.InitialOffset, OffsetOldest, OffsetNewest)
	p.oneOf("kafka.acks", k.Acks, AcksAll, AcksLeader)
	p.oneOf("kafka.partitioner", k.Partitioner, PartitionerMurmur2, PartitionerFNV1a, PartitionerCRC32)
	seen := make(map[string]bool, len(k.Partitioners))
	for i, tp := range k.Partitioners {
		path := fmt.Sprintf("kafka.partitioners[%d]", i)
		p.topic(path+".topic", tp.Topic)
		if seen[tp.Topic] {
			p.add(path+".topic", "%q is listed twice", tp.Topic)
		}
		seen[tp.Topic] = true
		p.oneOf(path+".partitioner", tp.Partitioner, PartitionerMurmur2, PartitionerFNV1a, PartitionerCRC32)
	}
	p.oneOf("kafka.consume", k.Consume, ConsumePartition, ConsumeKey)
	if k.MaxInFlight <= 0 {
		p.add("kafka.max_in_flight", "must be positive, got %d", k.MaxInFlight)
	}
	p.positive("kafka.session_timeout", k.SessionTimeout)
	p.positive("kafka.heartbeat_interval", k.HeartbeatInterval)
	if k.HeartbeatInterval > 0 && k.SessionTimeout > 0 && k.HeartbeatInterval >= k.SessionTimeout {
		p.add("kafka.heartbeat_interval", "must be less than kafka.session_timeout (%v), got %v",
			k.SessionTimeout, k.HeartbeatInterval)
	}
	p.positive("kafka.rebalance_timeout", k.RebalanceTimeout)
	p.positive("kafka.commit_interval", k.CommitInterval)

	switch {
	case k.TLS.CertFile != "" && k.TLS.KeyFile == "":
		p.add("kafka.tls.key_file", "required when cert_file is set")
	case k.TLS.CertFile == "" && k.TLS.KeyFile != "":
		p.add("kafka.tls.cert_file", "required when key_file is set")
	}
	if !k.TLS.Enabled && (k.TLS.CAFile != "" || k.TLS.CertFile != "" || k.TLS.KeyFile != "") {
		p.add("kafka.tls.enabled", "must be true when ca_file, cert_file or key_file is set")
	}

	s := k.SASL
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			p.add("kafka.sasl.mechanism", "required when username or password is set")
		}
		return
	}
	p.oneOf("kafka.sasl.mechanism", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	if s.Username == "" {
		p.add("kafka.sasl.username", "required when mechanism is set")
	}
	if s.Password == "" {
		p.add("kafka.sasl.password", "required when mechanism is set")
	}
}

// retry checks a retry block. An override (a route's) may leave fields zero
// to inherit them; a complete policy (defaults applied) may not.
func (p *problems) retry(prefix string, r Retry, override bool) {
	inherited := func(isZero bool) bool { return override && isZero }
	if r.MaxRetries < NoRetries || (r.MaxRetries == 0 && !override) {
		p.add(prefix+".max_retries", "must be positive, or %d for no retries; got %d", NoRetries, r.MaxRetries)
	}
	durations := []struct {
		key string
		d   time.Duration
	}{
		{"initial_interval", r.InitialInterval},
		{"max_interval", r.MaxInterval},
		{"attempt_timeout", r.AttemptTimeout},
	}
	for _, f := range durations {
		if !inherited(f.d == 0) {
			p.positive(prefix+"."+f.key, f.d)
		}
	}
	if !override && r.InitialInterval > 0 && r.MaxInterval > 0 && r.MaxInterval < r.InitialInterval {
		p.add(prefix+".max_interval", "must be at least initial_interval (%v), got %v",
			r.InitialInterval, r.MaxInterval)
	}
	if !inherited(r.Multiplier == 0) && !(r.Multiplier >= 1 && !math.IsInf(r.Multiplier, 1)) {
		p.add(prefix+".multiplier", "must be a finite number >= 1, got %v", r.Multiplier)
	}
	if !(r.Jitter >= 0 && r.Jitter <= 1) {
		p.add(prefix+".jitter", "must be between 0 and 1, got %v", r.Jitter)
	}
}

// routes checks the subscriber's routes; base is the service's retry policy,
// which each route's retry block overrides.
func (p *problems) routes(routes []Route, base Retry) {
	first := make(map[string]int, len(routes))
	for i, r := range routes {
		prefix := fmt.Sprintf("subscriber.routes[%d]", i)
		switch j, dup := first[r.Name]; {
		case r.Name == "":
			p.add(prefix+".name", "required")
		case dup:
			p.add(prefix+".name", "%q is also the name of subscriber.routes[%d]", r.Name, j)
		default:
			first[r.Name] = i
			p.name(prefix+".name", r.Name)
		}
		if r.Topic == "" {
			p.add(prefix+".topic", "required")
		} else {
			p.topic(prefix+".topic", r.Topic)
		}
		if r.Webhook.URL == "" {
			p.add(prefix+".webhook.url", "required")
		} else if u, err := url.Parse(r.Webhook.URL); err != nil ||
			(u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			// The URL is not quoted: it may hold credentials.
			p.add(prefix+".webhook.url", "must be an absolute http or https URL")
		}
		p.positive(prefix+".webhook.timeout", r.Webhook.Timeout)
		if r.Consume != "" {
			p.oneOf(prefix+".consume", r.Consume, ConsumePartition, ConsumeKey)
		}
		if r.MaxInFlight < 0 {
			p.add(prefix+".max_in_flight", "must be positive, got %d", r.MaxInFlight)
		}
		if r.Decode != "" {
			p.oneOf(prefix+".decode", r.Decode, DecodeJSON)
		}
		if key, ok := strings.CutPrefix(r.Webhook.Secret, "whsec_"); ok {
			// The secret is not quoted.
			if b, err := decodeBase64(key); err != nil || len(b) == 0 {
				p.add(prefix+".webhook.secret", `the text after "whsec_" must be non-empty base64 (Standard Webhooks)`)
			}
		}

		p.retry(prefix+".retry", r.Retry, true)
		eff := base.Override(r.Retry)
		switch {
		case eff.InitialInterval <= 0 || eff.MaxInterval <= 0 || eff.MaxInterval >= eff.InitialInterval:
			// Bad intervals are reported above or under retry.
		case r.Retry.MaxInterval != 0:
			p.add(prefix+".retry.max_interval", "must be at least initial_interval (%v), got %v",
				eff.InitialInterval, eff.MaxInterval)
		case r.Retry.InitialInterval != 0:
			p.add(prefix+".retry.initial_interval", "must be at most retry.max_interval (%v), got %v",
				eff.MaxInterval, eff.InitialInterval)
		}
	}
}

func (p *problems) positive(path string, d time.Duration) {
	if d <= 0 {
		p.add(path, "must be a positive duration, got %v", d)
	}
}

func (p *problems) oneOf(path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	last := len(quoted) - 1
	p.add(path, "must be %s or %s, got %s", strings.Join(quoted[:last], ", "), quoted[last], quote(got))
}

func (p *problems) topic(path, name string) {
	if err := ValidTopicName(name); err != nil {
		p.add(path, "%v", err)
	}
}

// name checks a service, group or handler name: it ends up in client IDs,
// consumer-group names and metric labels.
func (p *problems) name(path, name string) {
	switch {
	case name == "":
		p.add(path, "required")
	case !legalChars(name):
		p.add(path, "must contain only letters, digits, '.', '_' and '-', got %s", quote(name))
	}
}

func (p *problems) hostPort(path, addr string, listen bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || (host == "" && !listen) || strings.ContainsAny(host, " \t\r\n") {
		p.add(path, "must be host:port, got %s", quote(addr))
		return
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && !listen) {
		p.add(path, "port must be a number from 1 to 65535, got %s", quote(port))
	}
}

// maxTopicLen is the longest topic name Kafka accepts.
const maxTopicLen = 249

// ValidTopicName reports whether name is a legal Kafka topic name: 1 to 249
// characters from [a-zA-Z0-9._-], and neither "." nor "..". The error says
// what is wrong, without a field path.
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case len(name) > maxTopicLen:
		return fmt.Errorf("must be at most %d characters, got %d", maxTopicLen, len(name))
	case name == "." || name == "..":
		return fmt.Errorf(`must not be "." or "..", got %q`, name)
	case !legalChars(name):
		return fmt.Errorf("must contain only letters, digits, '.', '_' and '-', got %s", quote(name))
	}
	return nil
}

func legalChars(s string) bool {
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// quote quotes a non-secret value for a message, shortened if long.
func quote(s string) string { return strconv.Quote(shorten(s)) }

// shorten cuts s to a length fit for a one-line message.
func shorten(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		return s[:maxLen] + "…"
	}
	return s
}

// decodeBase64 accepts padded and unpadded standard base64.
func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}
