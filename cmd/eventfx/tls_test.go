package main_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventfx/eventfx/internal/kafkatest"
)

// tlsBroker is an in-process broker that requires TLS with a client
// certificate of p's CA.
func tlsBroker(t *testing.T, p kafkatest.PKI) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func tlsConfigFile(t *testing.T, addr, tls string) string {
	t.Helper()
	return writeFile(t, "eventfx.yaml", "kafka:\n  brokers: ["+addr+"]\n  tls: "+tls+"\n")
}

func TestMutualTLSFromConfig(t *testing.T) {
	t.Parallel()
	p := kafkatest.NewPKI(t)
	addr := tlsBroker(t, p)
	cfg := tlsConfigFile(t, addr, fmt.Sprintf("{enabled: true, ca_file: %q, cert_file: %q, key_file: %q}", p.CAFile, p.ClientCertFile, p.ClientKeyFile))

	r := run(t, nil, "publish", "--config", cfg, "--topic", kafkatest.Unique("secure"), "hello")

	assert.Equal(t, 0, r.code, "%s", r)
	assert.Regexp(t, published, strings.TrimSpace(r.stdout))
}

func TestTLSMisconfigurationIsAOneLineError(t *testing.T) {
	t.Parallel()
	p := kafkatest.NewPKI(t)
	addr := tlsBroker(t, p)
	tests := []struct{ name, tls, want string }{
		{"without the CA the broker is not trusted", fmt.Sprintf("{enabled: true, cert_file: %q, key_file: %q}", p.ClientCertFile, p.ClientKeyFile), "certificate signed by unknown authority"},
		{"without a client certificate the broker refuses", fmt.Sprintf("{enabled: true, ca_file: %q}", p.CAFile), "certificate required"},
		{"without TLS", "{enabled: false}", "is TLS missing?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, "publish", "--config", tlsConfigFile(t, addr, tt.tls), "--topic", kafkatest.Unique("secure"), "hello")
			t.Log(r.stderr)
			assert.Equal(t, 1, r.code, "%s", r)
			require.Len(t, lines(r.stderr), 1, "%s", r)
			assert.Contains(t, r.stderr, "no Kafka broker answered at "+addr)
			assert.Contains(t, r.stderr, tt.want)
		})
	}
}
