// Package registry is the embedded Confluent Schema Registry: the REST API
// of franz-go's srfake, with the two things srfake leaves out and a
// development registry needs: registrations survive a restart (a journal
// file in the data dir), and Avro schemas are checked for compatibility
// with the subject's earlier versions before they are registered.
//
// What is enforced, at the subject's compatibility level (the global
// level, BACKWARD unless changed with PUT /config): Avro schemas must
// parse (422 otherwise); for BACKWARD, FORWARD and FULL a new Avro schema
// is checked against the latest version, for the _TRANSITIVE levels
// against every version, NONE checks nothing (409 with the first
// incompatibility otherwise). POST /compatibility/... answers the same
// check. JSON Schema and Protobuf schemas are stored without checks.
package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventfx/eventfx/internal/refcount"
	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// JournalFile is the file in a data dir that holds the registry's journal:
// one JSON line per accepted change (registration, deletion, config or mode
// change), replayed in order at start.
const JournalFile = "schema-registry.jsonl"

// maxBody bounds a request body (a schema), as srfake does.
const maxBody = 1 << 20

// Registry is a running embedded registry.
type Registry struct {
	fake    *srfake.Registry
	inner   http.Handler // srfake's API
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	mu      sync.Mutex // serialises changes: check, apply, journal
	journal *os.File   // nil: in memory
}

// entry is one journal line: a change srfake accepted.
type entry struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Query  string          `json:"query,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// Start serves the registry on addr ("127.0.0.1:0": a free port). With
// dataDir set, it replays dataDir's journal and appends every accepted
// change to it; the caller owns the dir (the broker's lock covers it).
func Start(addr, dataDir string) (*Registry, error) {
	fake := srfake.NewRegistry()
	r := &Registry{fake: fake, inner: fake.Handler(), done: make(chan struct{})}
	if dataDir != "" {
		if err := r.open(filepath.Join(dataDir, JournalFile)); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.closeJournal()
		return nil, fmt.Errorf("schema registry on %s: %w", addr, err)
	}
	r.ln = ln
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln) // ends with Close
	}()
	return r, nil
}

// URL is the registry's base URL, http://host:port.
func (r *Registry) URL() string { return "http://" + r.ln.Addr().String() }

// Close stops serving and closes the journal. It is idempotent.
func (r *Registry) Close() {
	_ = r.srv.Close()
	<-r.done
	r.closeJournal()
}

func (r *Registry) closeJournal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.journal != nil {
		_ = r.journal.Close()
		r.journal = nil
	}
}

// open replays the journal at path and keeps it open for appending. A last
// line cut short by a crash is dropped (it was never acknowledged).
func (r *Registry) open(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("schema registry journal: %w", err)
	}
	rd := bufio.NewReader(f)
	var good int64
	for n := 1; ; n++ {
		line, err := rd.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a line without its newline was cut short
		}
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("schema registry journal %s: %w", path, err)
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			_ = f.Close()
			return fmt.Errorf("schema registry journal %s line %d: %w", path, n, err)
		}
		if code := r.apply(e); code/100 != 2 {
			_ = f.Close()
			return fmt.Errorf("schema registry journal %s line %d: %s %s answered %d on replay", path, n, e.Method, e.Path, code)
		}
		good += int64(len(line))
	}
	if err := f.Truncate(good); err != nil {
		_ = f.Close()
		return fmt.Errorf("schema registry journal: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return fmt.Errorf("schema registry journal: %w", err)
	}
	r.journal = f
	return nil
}

// apply sends e to srfake and returns its status.
func (r *Registry) apply(e entry) int {
	req := httptest.NewRequest(e.Method, e.Path+queryPart(e.Query), bytes.NewReader(e.Body))
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	return rec.Code
}

func queryPart(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

// changes reports whether a request may change the registry's state.
func changes(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodDelete
}

// ServeHTTP answers the Schema Registry REST API.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !changes(req.Method) {
		r.inner.ServeHTTP(w, req)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, 413, "request body too large")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	subject, version, op := route(req)
	if op == opRegister || op == opCheck {
		if op == opRegister {
			if id, ok := r.registered(subject, body); ok {
				// Registered already: answered with its ID, unchecked (as
				// Confluent does), journaled once.
				writeJSON(w, http.StatusOK, map[string]int{"id": id})
				return
			}
		}
		var s sr.Schema
		if err := json.Unmarshal(body, &s); err != nil {
			apiError(w, http.StatusUnprocessableEntity, sr.ErrInvalidSchema.Code, "invalid schema: "+err.Error())
			return
		}
		problem, status := r.check(subject, version, s)
		switch {
		case status != 0:
			apiError(w, status, status*100+1, problem)
			return
		case op == opCheck:
			writeJSON(w, http.StatusOK, compatibility(problem))
			return
		case problem != "":
			apiError(w, http.StatusConflict, http.StatusConflict,
				fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q: %s", subject, problem))
			return
		}
	}
	rec := httptest.NewRecorder()
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.inner.ServeHTTP(rec, req)
	if rec.Code/100 == 2 && op != opReadOnly {
		if err := r.record(entry{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, Body: jsonBody(body)}); err != nil {
			// Applied in memory but not durable: say so rather than pretend.
			apiError(w, http.StatusInternalServerError, 50001, "schema registry journal: "+err.Error())
			return
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// jsonBody is b as a journal field: nil when empty.
func jsonBody(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return json.RawMessage(bytes.TrimSpace(b))
}

// record appends e to the journal and syncs it.
func (r *Registry) record(e entry) error {
	if r.journal == nil {
		return nil
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := r.journal.Write(append(line, '\n')); err != nil {
		return err
	}
	return r.journal.Sync()
}

// Kinds of changing requests.
const (
	opOther    = iota // a change journaled as is (delete, config, mode)
	opRegister        // POST /subjects/{s}/versions
	opCheck           // POST /compatibility/subjects/{s}/versions[/{v}]
	opReadOnly        // POST /subjects/{s}: a lookup
)

// route classifies a changing request, with the subject and version it names.
func route(req *http.Request) (subject, version string, op int) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case req.Method == http.MethodPost && len(parts) == 3 && parts[0] == "subjects" && parts[2] == "versions":
		return parts[1], "", opRegister
	case req.Method == http.MethodPost && len(parts) == 2 && parts[0] == "subjects":
		return parts[1], "", opReadOnly
	case req.Method == http.MethodPost && len(parts) >= 4 && parts[0] == "compatibility" && parts[1] == "subjects" && parts[3] == "versions":
		if len(parts) == 5 {
			version = parts[4]
		}
		return parts[2], version, opCheck
	}
	return "", "", opOther
}

// check returns why s is incompatible with the subject's versions (""
// when it is compatible), or a status for a schema that is not valid. With
// version set, s is checked against that version alone.
func (r *Registry) check(subject, version string, s sr.Schema) (problem string, status int) {
	if s.Type != sr.TypeAvro {
		return "", 0 // stored unchecked
	}
	next, err := avro.Parse(s.Schema)
	if err != nil {
		return "Invalid schema: " + err.Error(), http.StatusUnprocessableEntity
	}
	level := r.level(subject)
	transitive := strings.HasSuffix(level.String(), "_TRANSITIVE")
	backward := strings.HasPrefix(level.String(), "BACKWARD") || strings.HasPrefix(level.String(), "FULL")
	forward := strings.HasPrefix(level.String(), "FORWARD") || strings.HasPrefix(level.String(), "FULL")
	if !backward && !forward {
		return "", 0
	}
	versions := r.versions(subject)
	switch {
	case version != "" && version != "latest":
		v, err := strconv.Atoi(version)
		if err != nil {
			return "invalid version " + version, http.StatusUnprocessableEntity
		}
		versions = []int{v}
	case !transitive && len(versions) > 0:
		versions = versions[len(versions)-1:]
	}
	for _, v := range versions {
		prev, ok := r.fake.GetSchema(subject, v)
		if !ok || prev.Type != sr.TypeAvro {
			continue
		}
		old, err := avro.Parse(prev.Schema.Schema)
		if err != nil {
			continue
		}
		if backward {
			if err := avro.CheckCompatibility(old, next); err != nil {
				return fmt.Sprintf("a reader of the new schema cannot read data of version %d (%s): %v", v, level, err), 0
			}
		}
		if forward {
			if err := avro.CheckCompatibility(next, old); err != nil {
				return fmt.Sprintf("a reader of version %d cannot read data of the new schema (%s): %v", v, level, err), 0
			}
		}
	}
	return "", 0
}

// registered returns the ID of the schema in body if the subject has it
// already (srfake's lookup, POST /subjects/{subject}).
func (r *Registry) registered(subject string, body []byte) (int, bool) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/subjects/"+url.PathEscape(subject), bytes.NewReader(body))
	r.inner.ServeHTTP(rec, req)
	var found struct {
		ID int `json:"id"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &found) != nil || found.ID == 0 {
		return 0, false
	}
	return found.ID, true
}

// level is the subject's compatibility level, else the global one.
func (r *Registry) level(subject string) sr.CompatibilityLevel {
	var out struct {
		Level sr.CompatibilityLevel `json:"compatibilityLevel"`
	}
	if r.get("/config/"+subject+"?defaultToGlobal=true", &out) != nil {
		return sr.CompatBackward
	}
	return out.Level
}

// versions lists the subject's live versions, oldest first.
func (r *Registry) versions(subject string) []int {
	var vs []int
	if r.get("/subjects/"+subject+"/versions", &vs) != nil {
		return nil
	}
	return vs
}

// get answers a GET of srfake's API into v.
func (r *Registry) get(path string, v any) error {
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, rec.Code)
	}
	return json.Unmarshal(rec.Body.Bytes(), v)
}

// compatibility is the answer of POST /compatibility/...
func compatibility(problem string) map[string]any {
	if problem == "" {
		return map[string]any{"is_compatible": true}
	}
	return map[string]any{"is_compatible": false, "messages": []string{problem}}
}

// apiError writes the registry's error body.
func apiError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"error_code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// The process's shared in-process registry: every service of one process
// whose kafka.brokers is [embedded] and whose schema_registry.url is empty
// uses it, as they share the embedded broker. It starts with the first
// user and stops with the last; it keeps nothing after that.
var shared = refcount.New(func() (*Registry, error) { return Start("127.0.0.1:0", "") }, (*Registry).Close)

// Acquire returns the process's shared registry, starting it if no one
// uses it, and a release function to call once done with it.
func Acquire() (*Registry, func(), error) { return shared.Acquire() }
