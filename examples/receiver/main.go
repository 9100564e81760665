// Receiver is a webhook target for trying cmd/subscriber: it prints every
// delivery, verifies its Standard Webhooks signature when given the route's
// secret, and answers 422 to payloads that are not JSON (so they end up in
// the poison queue).
//
//	go run ./examples/receiver --addr 127.0.0.1:9000 --secret whsec_ZXZlbnRmeC1kZW1vLXNlY3JldA==
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	secret := flag.String("secret", "", "the route's webhook secret, to verify signatures")
	flag.Parse()
	key, err := signingKey(*secret)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		verified := "unsigned"
		if key != nil {
			verified = "signature BAD"
			if verify(key, r.Header, body) {
				verified = "signature ok"
			}
		}
		fmt.Printf("%s id=%s correlation_id=%s topic=%s attempt=%s %s body=%s\n",
			time.Now().Format(time.TimeOnly), r.Header.Get("X-Event-ID"), r.Header.Get("X-Correlation-ID"),
			r.Header.Get("X-Event-Topic"), r.Header.Get("X-Event-Attempt"), verified, body)
		if !json.Valid(body) {
			http.Error(w, "payload is not JSON", http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	fmt.Println("receiver listening on", *addr)
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// signingKey decodes a Standard Webhooks secret (whsec_<base64>); any other
// secret is used as written.
func signingKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		return base64.StdEncoding.DecodeString(b64)
	}
	return []byte(secret), nil
}

// verify checks webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">.
func verify(key []byte, h http.Header, body []byte) bool {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", h.Get("webhook-id"), h.Get("webhook-timestamp"))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}
