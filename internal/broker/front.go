package broker

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The SASL front. kfake authenticates the clients that speak SASL as
// franz-go does (SaslHandshake v1, then SaslAuthenticate requests), and
// refuses the rest, which real Kafka accepts:
//
//   - librdkafka (kcat, confluent-kafka-*) asks ApiVersions whether the
//     broker has SaslHandshake v0 and, as kfake advertises only v1, gives
//     up ("SASL Handshake not supported by broker"), though it would then
//     use v1.
//   - kafka-python 2.0.2 (and Sarama with SASLHandshakeV0) sends
//     SaslHandshake v0 and then the SASL tokens as bare size-prefixed
//     frames, not Kafka requests (KIP-43's original protocol).
//
// When SASL is on, the front owns the public listener (and terminates TLS)
// and hands kfake, through a listener of its own whose address is the
// public one, the inner end of a pipe per client connection. Until the
// client has authenticated it reads the client's frames: it advertises
// SaslHandshake from v0 in ApiVersions answers, forwards a v0 handshake as
// v1 and then wraps each bare token into a SaslAuthenticate request and
// each answer back into a bare frame, and answers a failed
// SaslAuthenticate with SASL_AUTHENTICATION_FAILED, as Kafka does, where
// kfake only closes the connection. Once the client has authenticated, or
// sends anything else (kfake refuses it), it copies bytes both ways.
// Without SASL there is no front: kfake listens itself.

// maxAuthFrame bounds the frames the front reads before authentication:
// Kafka's sasl.server.max.receive.size default. A larger (or negative)
// size closes the connection, as Kafka does.
const maxAuthFrame = 512 * 1024

// maxAnswerFrame bounds the answers of kfake the front reads (ApiVersions,
// SaslHandshake, SaslAuthenticate: a few KiB at most).
const maxAnswerFrame = 1 << 20

var errFrameSize = errors.New("frame size out of bounds")

// front is the public listener of a broker with SASL.
type front struct {
	ln         net.Listener  // the public listener
	tls        *tls.Config   // nil: plaintext
	inner      *pipeListener // kfake's listener
	mechanisms []string      // the mechanisms of the users: sasl.enabled.mechanisms

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{} // open client connections and pipe ends
	workers sync.WaitGroup        // the accept loop and the sessions
}

func newFront(ln net.Listener, tc *tls.Config, users []SASLUser) *front {
	var mechanisms []string
	for _, m := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		if slices.ContainsFunc(users, func(u SASLUser) bool { return u.Mechanism == m }) {
			mechanisms = append(mechanisms, m)
		}
	}
	return &front{
		ln:         ln,
		tls:        tc,
		mechanisms: mechanisms,
		inner:      &pipeListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})},
		conns:      map[net.Conn]struct{}{},
	}
}

// start runs the accept loop.
func (f *front) start() {
	f.workers.Add(1)
	go f.serve()
}

func (f *front) serve() {
	defer f.workers.Done()
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !f.track(c, true) {
			_ = c.Close()
			return
		}
		go f.session(c)
	}
}

func (f *front) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// track registers c to be closed by close, and with worker a session to
// wait for. It is false once the front is closed.
func (f *front) track(c net.Conn, worker bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	if worker {
		f.workers.Add(1)
	}
	return true
}

func (f *front) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

// stopAccepting closes the public listener: the broker is closing.
func (f *front) stopAccepting() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	_ = f.ln.Close()
}

// close closes the public listener and every connection, and waits for the
// sessions to end. It is idempotent.
func (f *front) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	_ = f.ln.Close()
	_ = f.inner.Close()
	f.workers.Wait()
}

// session serves one client connection raw (TCP).
func (f *front) session(raw net.Conn) {
	defer f.workers.Done()
	defer f.untrack(raw)
	var client net.Conn = raw
	if f.tls != nil {
		client = tls.Server(raw, f.tls) // handshakes on the first read
	}
	defer client.Close()

	outer, inner := net.Pipe()
	if !f.track(outer, false) {
		_ = inner.Close()
		return
	}
	defer f.untrack(outer)
	defer outer.Close()
	if !f.inner.hand(&pipeConn{Conn: inner, local: raw.LocalAddr(), remote: raw.RemoteAddr()}) {
		_ = inner.Close()
		return
	}

	s := &saslSession{client: client, kfake: outer, closing: f.isClosed, mechanisms: f.mechanisms}
	if !s.authenticate() {
		return
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(outer, client)
		_ = outer.Close()
	}()
	_, _ = io.Copy(client, outer)
	_ = client.Close()
	<-copied
}

// saslSession is the front's part of a connection until its client has
// authenticated.
type saslSession struct {
	client     net.Conn // the client (TLS terminated)
	kfake      net.Conn // the outer end of kfake's pipe
	closing    func() bool
	mechanisms []string // enabled

	mechanism string // of the accepted SaslHandshake v1
	rounds    int    // SaslAuthenticate round trips left
}

// authenticate relays the connection's frames until its client has
// authenticated (true: copy the rest of the connection) or the connection
// is done (false: close it).
func (s *saslSession) authenticate() bool {
	for {
		req, err := readFrame(s.client, maxAuthFrame)
		if err != nil || len(req) < 8 {
			return false
		}
		key, version := int16(binary.BigEndian.Uint16(req)), int16(binary.BigEndian.Uint16(req[2:]))
		switch {
		case key == int16(kmsg.ApiVersions):
			resp, err := s.roundTrip(req)
			if err != nil || writeFrame(s.client, advertiseHandshakeV0(resp, version)) != nil {
				return false
			}
		case key == int16(kmsg.SASLHandshake):
			done, ok := s.handshake(req, version)
			if done || !ok {
				return ok
			}
		case key == int16(kmsg.SASLAuthenticate) && s.rounds > 0:
			done, ok := s.saslAuthenticate(req, version)
			if done || !ok {
				return ok
			}
		default:
			// Anything else is kfake's to answer (before authentication
			// it refuses it, closing the connection, as Kafka does).
			return writeFrame(s.kfake, req) == nil
		}
	}
}

// handshake relays a SaslHandshake request: a v0 one as v1 (their bodies
// are the same), followed by its bare token exchange. The answer lists the
// enabled mechanisms, as Kafka's does (kafka-python insists on it; kfake
// lists none on success), and refuses a mechanism no user has.
func (s *saslSession) handshake(req []byte, version int16) (done, ok bool) {
	hdrEnd, ok := requestHeaderEnd(req)
	if !ok {
		return false, false
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = version
	if hs.ReadFrom(req[hdrEnd:]) != nil {
		return false, false
	}
	if version == 0 {
		binary.BigEndian.PutUint16(req[2:], 1)
	}
	resp, err := s.roundTrip(req)
	if err != nil || len(resp) < 4 {
		return false, false
	}
	hr := kmsg.NewPtrSASLHandshakeResponse()
	hr.Version = 1
	if hr.ReadFrom(resp[4:]) != nil {
		return false, false
	}
	if hr.ErrorCode == 0 && !slices.Contains(s.mechanisms, hs.Mechanism) {
		hr.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	}
	if hr.ErrorCode == 0 || hr.ErrorCode == kerr.UnsupportedSaslMechanism.Code {
		hr.SupportedMechanisms = s.mechanisms
	}
	if writeFrame(s.client, hr.AppendTo(resp[:4:4])) != nil {
		return false, false
	}
	if hr.ErrorCode != 0 {
		// An unsupported mechanism or a handshake out of turn: Kafka
		// answers, then closes the connection.
		return false, false
	}
	rounds := saslRounds(hs.Mechanism)
	if rounds == 0 {
		return true, true // nothing the front knows; kfake's to judge
	}
	if version >= 1 {
		s.mechanism, s.rounds = hs.Mechanism, rounds
		return false, true
	}
	return true, s.bareTokens(req[4:hdrEnd], rounds)
}

// saslRounds is how many client tokens mechanism takes.
func saslRounds(mechanism string) int {
	switch mechanism {
	case SASLPlain:
		return 1 // the credentials
	case SASLScramSHA256, SASLScramSHA512:
		return 2 // client-first, client-final
	}
	return 0
}

// bareTokens exchanges rounds bare SASL tokens after a SaslHandshake v0,
// each as a SaslAuthenticate v0 round trip with kfake, under the
// handshake's correlation ID and client ID (hdr). A refused token closes
// the connection, as Kafka does on v0.
func (s *saslSession) bareTokens(hdr []byte, rounds int) bool {
	for range rounds {
		token, err := readFrame(s.client, maxAuthFrame)
		if err != nil {
			return false
		}
		req := binary.BigEndian.AppendUint16(nil, uint16(kmsg.SASLAuthenticate))
		req = binary.BigEndian.AppendUint16(req, 0)
		req = append(req, hdr...) // correlation ID, client ID
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.SASLAuthBytes = token
		req = auth.AppendTo(req)
		resp, err := s.roundTrip(req)
		if err != nil || len(resp) < 4 {
			return false
		}
		ar := kmsg.NewPtrSASLAuthenticateResponse()
		if ar.ReadFrom(resp[4:]) != nil || ar.ErrorCode != 0 {
			return false
		}
		if writeFrame(s.client, ar.SASLAuthBytes) != nil {
			return false
		}
	}
	return true
}

// saslAuthenticate relays a SaslAuthenticate request after a SaslHandshake
// v1. When kfake refuses it (closing the connection), the client gets
// SASL_AUTHENTICATION_FAILED, as from Kafka, and the connection closes.
func (s *saslSession) saslAuthenticate(req []byte, version int16) (done, ok bool) {
	resp, err := s.roundTrip(req)
	if err != nil {
		if !s.closing() {
			_ = writeFrame(s.client, authFailed(req, version, s.mechanism))
		}
		return false, false
	}
	if writeFrame(s.client, resp) != nil {
		return false, false
	}
	ar := kmsg.NewPtrSASLAuthenticateResponse()
	ar.Version = version
	body := kbin.Reader{Src: resp[min(4, len(resp)):]}
	if ar.IsFlexible() {
		kmsg.SkipTags(&body) // the response header's
	}
	if ar.ReadFrom(body.Src) != nil || ar.ErrorCode != 0 {
		return false, false
	}
	s.rounds--
	return s.rounds == 0, true
}

// authFailed is Kafka's answer to a SaslAuthenticate request with wrong
// credentials.
func authFailed(req []byte, version int16, mechanism string) []byte {
	msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism
	if mechanism == SASLPlain {
		msg = "Authentication failed: Invalid username or password"
	}
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.Version = version
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	resp.ErrorMessage = &msg
	out := append([]byte(nil), req[4:8]...) // correlation ID
	if resp.IsFlexible() {
		out = append(out, 0) // no header tags
	}
	return resp.AppendTo(out)
}

// roundTrip sends req to kfake and returns its answer.
func (s *saslSession) roundTrip(req []byte) ([]byte, error) {
	if err := writeFrame(s.kfake, req); err != nil {
		return nil, err
	}
	return readFrame(s.kfake, maxAnswerFrame)
}

// advertiseHandshakeV0 returns ApiVersions answer resp (to a request of
// version) with SaslHandshake from v0, as Kafka advertises it. An answer
// it cannot decode and encode back to the same bytes (an error, a version
// it does not know) it returns as is.
func advertiseHandshakeV0(resp []byte, version int16) []byte {
	if len(resp) < 6 || binary.BigEndian.Uint16(resp[4:]) != 0 {
		return resp // an error answer, maybe of another version
	}
	av := kmsg.NewPtrApiVersionsResponse()
	av.Version = version
	if av.ReadFrom(resp[4:]) != nil || !bytes.Equal(av.AppendTo(resp[:4:4]), resp) {
		return resp
	}
	changed := false
	for i := range av.ApiKeys {
		if k := &av.ApiKeys[i]; k.ApiKey == int16(kmsg.SASLHandshake) && k.MinVersion > 0 {
			k.MinVersion, changed = 0, true
		}
	}
	if !changed {
		return resp
	}
	return av.AppendTo(resp[:4:4])
}

// requestHeaderEnd is the offset of a non-flexible request's body: after
// key, version, correlation ID and client ID.
func requestHeaderEnd(req []byte) (int, bool) {
	if len(req) < 10 {
		return 0, false
	}
	n := int(int16(binary.BigEndian.Uint16(req[8:])))
	if n < 0 {
		n = 0 // null client ID
	}
	if 10+n > len(req) {
		return 0, false
	}
	return 10 + n, true
}

// readFrame reads a size-prefixed frame of at most limit bytes.
func readFrame(r io.Reader, limit int) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || int(n) > limit {
		return nil, errFrameSize
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// writeFrame writes b size-prefixed, in one write.
func writeFrame(w io.Writer, b []byte) error {
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// pipeListener is kfake's listener behind the front: Addr is the public
// address (so Metadata advertises it), Accept returns the connections the
// front hands it.
type pipeListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return l.addr }

// hand gives kfake c; false once the listener is closed.
func (l *pipeListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// pipeConn is kfake's end of a client connection, with the client's
// addresses (kfake shows the remote one as a group member's host).
type pipeConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }
