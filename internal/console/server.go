package console

import (
	"crypto/subtle"
	"errors"
	"mime"
	"net"
	"net/http"
	"strings"
)

// Handler is the console's HTTP handler, for a server listening on addr.
//
// The security model: reads (GET) never change anything. Every request
// that changes something (POST) needs, when a token is set,
// "Authorization: Bearer <token>" (401 otherwise), is refused in read-only
// mode (403), must send JSON (415 otherwise: an HTML form cannot), and
// must come from the console's own origin (Go's CrossOriginProtection:
// Sec-Fetch-Site and Origin; 403 otherwise). When addr is a loopback
// address, a request naming another host (DNS rebinding) is refused (421).
func (c *Console) Handler(addr string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/topology", c.apiTopology)
	mux.HandleFunc("GET /api/lag", c.apiLag)
	mux.HandleFunc("GET /api/poison/groups", c.apiPoisonGroups)
	mux.HandleFunc("GET /api/poison/groups/{group}/messages", c.apiGroupMessages)
	mux.Handle("POST /api/poison/replay", c.mutation(http.HandlerFunc(c.apiReplay)))
	mux.HandleFunc("GET /api/topics", c.apiTopics)
	mux.HandleFunc("GET /api/topics/{topic}/messages", c.apiMessages)
	mux.HandleFunc("GET /api/conversations/{correlation_id}", c.apiConversation)
	mux.HandleFunc("/api/poison/replay", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, errors.New("replay is a POST"))
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errors.New("no such API: "+r.URL.Path))
	})
	c.views.routes(mux, c)
	var h http.Handler = mux
	if loopback(addr) {
		h = loopbackOnly(h)
	}
	return securityHeaders(h)
}

// mutation guards a handler that changes something; see Handler.
func (c *Console) mutation(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.o.Token != "" && !bearer(r, c.o.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="eventfx console"`)
			writeError(w, http.StatusUnauthorized, errors.New("this request needs the console's token: Authorization: Bearer <token>"))
			return
		}
		if c.o.ReadOnly {
			writeError(w, http.StatusForbidden, errors.New("the console is read-only (--read-only)"))
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, errors.New("send the request as Content-Type: application/json"))
			return
		}
		next.ServeHTTP(w, r)
	})
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, errors.New("cross-origin request refused"))
	}))
	return cop.Handler(guarded)
}

// bearer reports whether r carries "Authorization: Bearer <token>".
func bearer(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// loopback reports whether addr's host is a loopback address or name.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackOnly refuses requests whose Host is not a loopback name or
// address: a page of another site whose name resolves to 127.0.0.1 (DNS
// rebinding) cannot read the console.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopback(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, errors.New("the console listens on loopback: open it as localhost or 127.0.0.1"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets headers that keep the pages from being framed and
// from loading anything from elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}
