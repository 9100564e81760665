package kafka_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/kafka"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

func TestTLSWithPrivateCAAndClientCertificate(t *testing.T) {
	p := kafkatest.NewPKI(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(),
		kfake.GroupMinSessionTimeout(100*time.Millisecond), // kafkatest.Config uses 2 s
		kfake.TLS(&tls.Config{
			Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		}))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	tests := []struct {
		name    string
		tls     config.TLS
		wantErr bool
	}{
		{"private CA and client certificate", config.TLS{Enabled: true, CAFile: p.CAFile, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}, false},
		{"without the CA the server is not trusted", config.TLS{Enabled: true, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}, true},
		{"without a client certificate the server refuses", config.TLS{Enabled: true, CAFile: p.CAFile}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafkatest.Config(addr)
			cfg.Kafka.TLS = tt.tls
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			k, err := kafka.New(cfg, quiet)
			if err == nil {
				err = k.Start(ctx)
				defer k.Close()
			}
			if tt.wantErr {
				assert.ErrorContains(t, err, "kafka.tls.ca_file")
				return
			}
			require.NoError(t, err)
			topic := kafkatest.Unique("secure")
			err = k.Publisher().Publish(topic, message.NewMessage("m1", []byte("hello")))
			require.NoError(t, err)
			consumeInBothModes(t, k, topic, "hello")
		})
	}
}
