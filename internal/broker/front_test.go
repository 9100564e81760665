package broker_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	. "github.com/eventfx/eventfx/internal/broker"
	"github.com/eventfx/eventfx/internal/kafkatest"
)

// maxAuthFrame is Kafka's sasl.server.max.receive.size default, the
// front's bound on frames before authentication.
const maxAuthFrame = 512 * 1024

func readFrame(r io.Reader, limit int) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > uint32(limit) {
		return nil, errors.New("frame too large")
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeFrame(w io.Writer, b []byte) error {
	_, err := w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
	return err
}

var testUsers = []SASLUser{
	{Mechanism: SASLPlain, User: "alice", Password: "plain-pw"},
	{Mechanism: SASLScramSHA256, User: "alice", Password: "scram256-pw"},
	{Mechanism: SASLScramSHA512, User: "bob", Password: "scram512-pw"},
}

func startSASL(t *testing.T, tc *tls.Config, users ...SASLUser) *Broker {
	t.Helper()
	if len(users) == 0 {
		users = testUsers
	}
	b, err := Start(Config{SASL: users, TLS: tc, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// wire is a raw Kafka connection, as the clients without franz-go speak.
type wire struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dial(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &wire{t: t, c: c}
}

func (w *wire) send(req kmsg.Request) int32 {
	w.t.Helper()
	w.corr++
	if _, err := w.c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("wire-test")).AppendRequest(nil, req, w.corr)); err != nil {
		w.t.Fatal(err)
	}
	return w.corr
}

func (w *wire) frame() ([]byte, error) { return readFrame(w.c, 1<<24) }

// request sends req and decodes its answer into resp (err: the connection closed).
func (w *wire) request(req kmsg.Request) (kmsg.Response, error) {
	w.t.Helper()
	corr := w.send(req)
	b, err := w.frame()
	if err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		w.t.Fatalf("correlation ID %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	r := kbin.Reader{Src: b[4:]}
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		kmsg.SkipTags(&r)
	}
	if err := resp.ReadFrom(r.Src); err != nil {
		w.t.Fatalf("%s answer: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// bare sends a bare SASL token and returns the bare answer.
func (w *wire) bare(token []byte) ([]byte, error) {
	w.t.Helper()
	if err := writeFrame(w.c, token); err != nil {
		return nil, err
	}
	return w.frame()
}

func (w *wire) closed() bool {
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := w.c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}

func handshakeVersions(t *testing.T, w *wire, version int16) kmsg.ApiVersionsResponseApiKey {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = version
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wire", "1.0"
	resp, err := w.request(req)
	if err != nil {
		t.Fatalf("ApiVersions v%d: %v", version, err)
	}
	for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == int16(kmsg.SASLHandshake) {
			return k
		}
	}
	t.Fatalf("ApiVersions v%d: no SaslHandshake", version)
	return kmsg.ApiVersionsResponseApiKey{}
}

func TestSASLAdvertisesHandshakeV0AsKafkaDoes(t *testing.T) {
	b := startSASL(t, nil)
	w := dial(t, b.Addr())
	for _, v := range []int16{0, 1, 2, 3, 4} {
		if k := handshakeVersions(t, w, v); k.MinVersion != 0 || k.MaxVersion != 1 {
			t.Errorf("ApiVersions v%d: SaslHandshake v%d–v%d, want v0–v1", v, k.MinVersion, k.MaxVersion)
		}
	}
	// A version above the broker's is answered as v0 with
	// UNSUPPORTED_VERSION, passed on as it is.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 99
	w.send(req)
	f, err := w.frame()
	if err != nil || len(f) < 6 || int16(binary.BigEndian.Uint16(f[4:])) != kerr.UnsupportedVersion.Code {
		t.Errorf("ApiVersions v99: %x, %v", f, err)
	}
}

func TestWithoutSASLNothingChanges(t *testing.T) {
	b, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if k := handshakeVersions(t, dial(t, b.Addr()), 3); k.MinVersion != 1 {
		t.Errorf("SaslHandshake from v%d: the broker without SASL answers as kfake does (v1)", k.MinVersion)
	}
}

func handshake(t *testing.T, w *wire, version int16, mechanism string) *kmsg.SASLHandshakeResponse {
	t.Helper()
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version, req.Mechanism = version, mechanism
	resp, err := w.request(req)
	if err != nil {
		t.Fatalf("SaslHandshake v%d %s: %v", version, mechanism, err)
	}
	return resp.(*kmsg.SASLHandshakeResponse)
}

// metadataWorks is whether w is authenticated: kfake closes an
// unauthenticated connection on Metadata.
func metadataWorks(t *testing.T, w *wire) bool {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1
	resp, err := w.request(req)
	if err != nil {
		return false
	}
	bs := resp.(*kmsg.MetadataResponse).Brokers
	return len(bs) == 1 && net.JoinHostPort(bs[0].Host, strconv.Itoa(int(bs[0].Port))) == w.c.RemoteAddr().String()
}

func TestSASLHandshakeV0WithBarePLAINTokens(t *testing.T) {
	b := startSASL(t, nil)

	w := dial(t, b.Addr())
	hs := handshake(t, w, 0, SASLPlain)
	if hs.ErrorCode != 0 || strings.Join(hs.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
		t.Fatalf("handshake: error %d, mechanisms %v", hs.ErrorCode, hs.SupportedMechanisms)
	}
	answer, err := w.bare([]byte("\x00alice\x00plain-pw"))
	if err != nil || len(answer) != 0 {
		t.Fatalf("PLAIN: answer %q, %v; want an empty frame", answer, err)
	}
	if !metadataWorks(t, w) {
		t.Fatal("not authenticated after PLAIN (or Metadata does not advertise the public address)")
	}

	w = dial(t, b.Addr())
	handshake(t, w, 0, SASLPlain)
	if answer, err := w.bare([]byte("\x00alice\x00wrong")); err == nil {
		t.Fatalf("a wrong PLAIN password is answered %q", answer)
	}
}

func TestSASLHandshakeV0WithBareSCRAMTokens(t *testing.T) {
	b := startSASL(t, nil)
	for _, tt := range []struct {
		mech, user, pass string
		hash             xscram.HashGeneratorFcn
		ok               bool
	}{
		{SASLScramSHA256, "alice", "scram256-pw", xscram.SHA256, true},
		{SASLScramSHA512, "bob", "scram512-pw", xscram.SHA512, true},
		{SASLScramSHA256, "alice", "wrong", xscram.SHA256, false},
		{SASLScramSHA512, "alice", "scram256-pw", xscram.SHA512, false}, // a user of another mechanism
	} {
		t.Run(tt.mech+" "+tt.user+" "+tt.pass, func(t *testing.T) {
			w := dial(t, b.Addr())
			if hs := handshake(t, w, 0, tt.mech); hs.ErrorCode != 0 {
				t.Fatalf("handshake error %d", hs.ErrorCode)
			}
			client, err := tt.hash.NewClient(tt.user, tt.pass, "")
			if err != nil {
				t.Fatal(err)
			}
			conv := client.NewConversation()
			first, _ := conv.Step("")
			serverFirst, err := w.bare([]byte(first))
			if err != nil {
				if tt.ok {
					t.Fatalf("client-first: %v", err)
				}
				return // an unknown user: closed at once
			}
			final, err := conv.Step(string(serverFirst))
			if err != nil {
				t.Fatal(err)
			}
			serverFinal, err := w.bare([]byte(final))
			if !tt.ok {
				if err == nil {
					t.Fatalf("wrong credentials are answered %q", serverFinal)
				}
				return
			}
			if err != nil {
				t.Fatalf("client-final: %v", err)
			}
			if _, err := conv.Step(string(serverFinal)); err != nil || !conv.Valid() {
				t.Fatalf("server-final %q does not verify: %v", serverFinal, err)
			}
			if !metadataWorks(t, w) {
				t.Fatal("not authenticated after SCRAM")
			}
		})
	}
}

func TestSASLHandshakeRefusesAMechanismWithoutUsers(t *testing.T) {
	b := startSASL(t, nil, SASLUser{Mechanism: SASLScramSHA256, User: "alice", Password: "pw"})
	for _, v := range []int16{0, 1} {
		w := dial(t, b.Addr())
		hs := handshake(t, w, v, SASLPlain)
		if hs.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(hs.SupportedMechanisms, ",") != SASLScramSHA256 {
			t.Errorf("v%d: error %d, mechanisms %v; want UNSUPPORTED_SASL_MECHANISM, [SCRAM-SHA-256]", v, hs.ErrorCode, hs.SupportedMechanisms)
		}
		if !w.closed() {
			t.Errorf("v%d: the connection stays open", v)
		}
	}
}

func TestSASLAuthenticateFailureIsKafkasError(t *testing.T) {
	b := startSASL(t, nil)
	for _, tt := range []struct {
		name string
		mech kgo.Opt
		want string
	}{
		{"PLAIN", kgo.SASL(plain.Auth{User: "alice", Pass: "nope"}.AsMechanism()), "Invalid username or password"},
		{"SCRAM-SHA-256", kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism()), "invalid credentials with SASL mechanism SCRAM-SHA-256"},
		{"SCRAM-SHA-512", kgo.SASL(scram.Auth{User: "bob", Pass: "nope"}.AsSha512Mechanism()), "invalid credentials with SASL mechanism SCRAM-SHA-512"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := kafkatest.Client(t, b.Addr(), tt.mech)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Ping(ctx)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want SASL_AUTHENTICATION_FAILED: …%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "nope") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

func TestSASLFrontRefusesAbsurdFrames(t *testing.T) {
	b := startSASL(t, nil)
	for _, size := range []uint32{maxAuthFrame + 1, 1 << 31, 0xffffffff} {
		w := dial(t, b.Addr())
		if _, err := w.c.Write(binary.BigEndian.AppendUint32(nil, size)); err != nil {
			t.Fatal(err)
		}
		if !w.closed() {
			t.Errorf("a frame of %d bytes leaves the connection open", size)
		}
	}
	// And the broker still serves.
	if !metadataWorksAfterPLAIN(t, b.Addr()) {
		t.Fatal("the broker stopped serving")
	}
}

func metadataWorksAfterPLAIN(t *testing.T, addr string) bool {
	w := dial(t, addr)
	handshake(t, w, 0, SASLPlain)
	if _, err := w.bare([]byte("\x00alice\x00plain-pw")); err != nil {
		return false
	}
	return metadataWorks(t, w)
}

func TestSASLFrontWithTLS(t *testing.T) {
	p := kafkatest.NewPKI(t)
	mtls := &tls.Config{Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	b := startSASL(t, mtls)
	ping := func(cfg *tls.Config, mech kgo.Opt) error {
		c := kafkatest.Client(t, b.Addr(), kgo.DialTLSConfig(cfg), mech)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Ping(ctx)
	}
	right := kgo.SASL(scram.Auth{User: "bob", Pass: "scram512-pw"}.AsSha512Mechanism())
	withCert := &tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{p.Client}, MinVersion: tls.VersionTLS12}
	if err := ping(withCert, right); err != nil {
		t.Errorf("TLS with a client certificate, SCRAM-SHA-512: %v", err)
	}
	if err := ping(withCert, kgo.SASL(scram.Auth{User: "bob", Pass: "nope"}.AsSha512Mechanism())); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("TLS, a wrong password: %v", err)
	}
	if err := ping(&tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}, right); err == nil {
		t.Error("mutual TLS: a client without a certificate gets in")
	}
}

// Close ends every connection, in whatever state, and every goroutine of
// the front.
func TestSASLCloseEndsEveryConnection(t *testing.T) {
	before := runtime.NumGoroutine()
	b, err := Start(Config{SASL: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	idle := dial(t, b.Addr()) // nothing sent
	midway := dial(t, b.Addr())
	handshake(t, midway, 0, SASLScramSHA256) // waits for client-first
	authed := dial(t, b.Addr())
	handshake(t, authed, 0, SASLPlain)
	if _, err := authed.bare([]byte("\x00alice\x00plain-pw")); err != nil {
		t.Fatal(err)
	}
	c := kafkatest.Client(t, b.Addr(), kgo.SASL(scram.Auth{User: "alice", Pass: "scram256-pw"}.AsSha256Mechanism()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	b.Close()
	b.Close() // idempotent
	for name, w := range map[string]*wire{"idle": idle, "midway": midway, "authenticated": authed} {
		if !w.closed() {
			t.Errorf("the %s connection stays open", name)
		}
	}
	if conn, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		conn.Close()
		t.Error("the closed broker still accepts connections")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before Start, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
