package kafkatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a private CA with a server certificate for 127.0.0.1 and a client
// certificate, as parsed pairs and as PEM files in a test directory.
type PKI struct {
	CAFile string
	Pool   *x509.CertPool // holds the CA

	Server                        tls.Certificate
	ServerCertFile, ServerKeyFile string
	Client                        tls.Certificate
	ClientCertFile, ClientKeyFile string
}

// NewPKI issues a fresh CA and certificates valid for an hour.
func NewPKI(t testing.TB) PKI {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("test PKI: %v", err)
		}
	}
	write := func(name string, b *pem.Block) string {
		path := filepath.Join(dir, name)
		must(os.WriteFile(path, pem.EncodeToMemory(b), 0o600))
		return path
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "eventfx test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	issue := func(serial int64, usage x509.ExtKeyUsage, name string) (tls.Certificate, string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "eventfx " + name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		must(err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		must(err)
		certBlock := &pem.Block{Type: "CERTIFICATE", Bytes: der}
		keyBlock := &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}
		pair, err := tls.X509KeyPair(pem.EncodeToMemory(certBlock), pem.EncodeToMemory(keyBlock))
		must(err)
		return pair, write(name+".pem", certBlock), write(name+"-key.pem", keyBlock)
	}
	p := PKI{CAFile: write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caDER}), Pool: x509.NewCertPool()}
	p.Pool.AddCert(ca)
	p.Server, p.ServerCertFile, p.ServerKeyFile = issue(2, x509.ExtKeyUsageServerAuth, "server")
	p.Client, p.ClientCertFile, p.ClientKeyFile = issue(3, x509.ExtKeyUsageClientAuth, "client")
	return p
}
