package broker

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseSASLUser(t *testing.T) {
	u, err := ParseSASLUser("scram-sha-512:alice:pa:ss")
	if err != nil {
		t.Fatal(err)
	}
	if u != (SASLUser{Mechanism: SASLScramSHA512, User: "alice", Password: "pa:ss"}) {
		t.Fatalf("got %#v", u)
	}
	for _, bad := range []string{"", "PLAIN", "PLAIN:alice", "PLAIN::pw-x", "PLAIN:alice:", "GSSAPI:alice:pw-x"} {
		_, err := ParseSASLUser(bad)
		if err == nil {
			t.Errorf("%q: want an error", bad)
		} else if strings.Contains(err.Error(), "pw-x") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
}

func TestSASLUserNeverPrintsThePassword(t *testing.T) {
	u := SASLUser{Mechanism: SASLPlain, User: "alice", Password: "s3cret"}
	cfg := Config{SASL: []SASLUser{u}}
	for _, s := range []string{fmt.Sprint(u), fmt.Sprintf("%+v", u), fmt.Sprintf("%#v", u), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("printed the password: %s", s)
		}
	}
}

func TestStartWithSASLAndTLSErrors(t *testing.T) {
	if _, err := Start(Config{SASL: []SASLUser{{Mechanism: "NOPE", User: "a", Password: "b"}}}); err == nil {
		t.Error("an unknown mechanism starts a broker")
	}
	if _, err := LoadTLS(TLSFiles{CertFile: "/no/such.pem", KeyFile: "/no/such-key.pem"}); err == nil || !strings.Contains(err.Error(), "/no/such.pem") {
		t.Errorf("missing certificate: %v", err)
	}
}
