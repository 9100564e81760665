package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventfx/eventfx/internal/kafkatest"
)

// testPKI is a private CA (caFile) with a server certificate for 127.0.0.1
// and a client certificate (certFile, keyFile).
type testPKI struct {
	caFile, certFile, keyFile string
	server                    tls.Certificate
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "eventfx CLI test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "eventfx"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	serverCert, serverKey := issue(2, x509.ExtKeyUsageServerAuth)
	server, err := tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)
	clientCert, clientKey := issue(3, x509.ExtKeyUsageClientAuth)
	p := testPKI{
		caFile:   writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))),
		certFile: writeFile(t, "client.pem", string(clientCert)),
		keyFile:  writeFile(t, "client-key.pem", string(clientKey)),
		server:   server,
		pool:     x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	return p
}

// tlsBroker is an in-process broker that requires TLS with a client
// certificate of p's CA.
func tlsBroker(t *testing.T, p testPKI) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
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
	p := newTestPKI(t)
	addr := tlsBroker(t, p)
	cfg := tlsConfigFile(t, addr, fmt.Sprintf("{enabled: true, ca_file: %q, cert_file: %q, key_file: %q}", p.caFile, p.certFile, p.keyFile))

	r := run(t, nil, "publish", "--config", cfg, "--topic", kafkatest.Unique("secure"), "hello")

	assert.Equal(t, 0, r.code, "%s", r)
	assert.Regexp(t, published, strings.TrimSpace(r.stdout))
}

func TestTLSMisconfigurationIsAOneLineError(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	addr := tlsBroker(t, p)
	tests := []struct{ name, tls, want string }{
		{"without the CA the broker is not trusted", fmt.Sprintf("{enabled: true, cert_file: %q, key_file: %q}", p.certFile, p.keyFile), "certificate signed by unknown authority"},
		{"without a client certificate the broker refuses", fmt.Sprintf("{enabled: true, ca_file: %q}", p.caFile), "certificate required"},
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
