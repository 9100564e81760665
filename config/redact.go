package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
)

// redacted replaces a secret that is set.
const redacted = "[redacted]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// Redacted returns a copy of c, safe to print: Kafka.SASL.Password,
// HTTP.AuthToken, Console.Token, the registry's password and bearer token
// and every webhook's Secret are "[redacted]" if set, and the passwords of a
// webhook URL and of outbox.dsn are masked.
func (c Config) Redacted() Config {
	c.Kafka.SASL = c.Kafka.SASL.redacted()
	c.HTTP = c.HTTP.redacted()
	c.SchemaRegistry = c.SchemaRegistry.redacted()
	c.Console = c.Console.redacted()
	c.Outbox.DSN = c.Outbox.RedactedDSN()
	c.Subscriber.Routes = slices.Clone(c.Subscriber.Routes)
	for i := range c.Subscriber.Routes {
		c.Subscriber.Routes[i].Webhook = c.Subscriber.Routes[i].Webhook.redacted()
	}
	return c
}

func (s SASL) redacted() SASL { s.Password = redact(s.Password); return s }
func (h HTTP) redacted() HTTP { h.AuthToken = redact(h.AuthToken); return h }
func (w Webhook) redacted() Webhook {
	w.Secret = redact(w.Secret)
	if u, err := url.Parse(w.URL); err == nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			w.URL = u.Redacted()
		}
	}
	return w
}

// The types that hold secrets print redacted with fmt (%v, %+v, %s, %#v)
// and log/slog. The plain* types print the fields without these methods.
type (
	plainConfig  Config
	plainSASL    SASL
	plainHTTP    HTTP
	plainWebhook Webhook
)

// String formats c.Redacted() as %+v would.
func (c Config) String() string { return fmt.Sprintf("%+v", plainConfig(c.Redacted())) }

// GoString formats c.Redacted() as %#v would.
func (c Config) GoString() string { return fmt.Sprintf("%#v", plainConfig(c.Redacted())) }

// LogValue logs c.Redacted() as a string.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String formats s with its password redacted.
func (s SASL) String() string { return fmt.Sprintf("%+v", plainSASL(s.redacted())) }

// LogValue logs s with its password redacted.
func (s SASL) LogValue() slog.Value { return slog.StringValue(s.String()) }

// String formats h with its auth token redacted.
func (h HTTP) String() string { return fmt.Sprintf("%+v", plainHTTP(h.redacted())) }

// LogValue logs h with its auth token redacted.
func (h HTTP) LogValue() slog.Value { return slog.StringValue(h.String()) }

// String formats w with its secret redacted.
func (w Webhook) String() string { return fmt.Sprintf("%+v", plainWebhook(w.redacted())) }

// LogValue logs w with its secret redacted.
func (w Webhook) LogValue() slog.Value { return slog.StringValue(w.String()) }

// GoString formats s with its password redacted.
func (s SASL) GoString() string { return fmt.Sprintf("%#v", plainSASL(s.redacted())) }

// GoString formats h with its auth token redacted.
func (h HTTP) GoString() string { return fmt.Sprintf("%#v", plainHTTP(h.redacted())) }

// GoString formats w with its secret redacted.
func (w Webhook) GoString() string { return fmt.Sprintf("%#v", plainWebhook(w.redacted())) }
