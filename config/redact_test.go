package config_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/eventfx/eventfx/config"
)

// secretConfig holds one secret of each kind.
func secretConfig() config.Config {
	c := validConfig() // SASL password hunter2, auth token tok3n, webhook secret s3cret
	c.Subscriber.Routes[1].Webhook.URL = "https://user:pa55word@example.com/b"
	return c
}

var secrets = []string{"hunter2", "tok3n", "s3cret", "pa55word"}

func TestRedacted(t *testing.T) {
	t.Parallel()
	c := secretConfig()
	r := c.Redacted()

	assert.Equal(t, "[redacted]", r.Kafka.SASL.Password)
	assert.Equal(t, "[redacted]", r.HTTP.AuthToken)
	assert.Equal(t, "[redacted]", r.Subscriber.Routes[0].Webhook.Secret)
	assert.Empty(t, r.Subscriber.Routes[1].Webhook.Secret, "an unset secret stays empty")
	assert.Equal(t, "https://user:xxxxx@example.com/b", r.Subscriber.Routes[1].Webhook.URL)
	assert.Equal(t, c.Kafka.SASL.Username, r.Kafka.SASL.Username)

	c.Console.Token = "c0nsole"
	assert.Equal(t, "[redacted]", c.Redacted().Console.Token)
	c.Console.Token = ""
	c.Outbox.DSN = "postgres://app:pgs3cret@127.0.0.1/orders"
	assert.Equal(t, "postgres://app:[redacted]@127.0.0.1/orders", c.Redacted().Outbox.DSN)
	c.Outbox.DSN = ""

	assert.Equal(t, secretConfig(), c, "Redacted leaves c as it was")
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	t.Parallel()
	c := secretConfig()
	slogText := func(v any) string {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", "v", v)
		return buf.String()
	}
	slogJSON := func(v any) string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", "v", v)
		return buf.String()
	}
	outputs := map[string]string{
		"Config %v":      fmt.Sprintf("%v", c),
		"Config %+v":     fmt.Sprintf("%+v", c),
		"Config %#v":     fmt.Sprintf("%#v", c),
		"Config %s":      fmt.Sprint(c),
		"Config slog":    slogText(c),
		"Config json":    slogJSON(c),
		"Kafka %+v":      fmt.Sprintf("%+v", c.Kafka),
		"Kafka %#v":      fmt.Sprintf("%#v", c.Kafka),
		"SASL slog json": slogJSON(c.Kafka.SASL),
		"HTTP %v":        fmt.Sprintf("%v", c.HTTP),
		"HTTP slog":      slogText(c.HTTP),
		"routes %+v":     fmt.Sprintf("%+v", c.Subscriber.Routes),
		"Webhook json":   slogJSON(c.Subscriber.Routes[0].Webhook),
	}
	for name, out := range outputs {
		for _, secret := range secrets {
			assert.NotContains(t, out, secret, name)
		}
		assert.Contains(t, out, "[redacted]", name)
	}
}
