// Package refservice is a reference implementation of the dsr-operator HTTP connector protocol
// v1 (docs/connector-protocol.md): an http.Handler over an in-memory store of records, for the
// connector's tests and for teams who implement the protocol in front of their own systems and
// want to see one working answer to every request.
//
// It deliberately shares no code with the connector: it is written against the document, so
// that a disagreement between the two shows up in the tests instead of being hidden by a
// common struct.
//
// Besides the protocol, it has knobs for tests: asynchronous answers (202 Accepted, then the
// result after some polls or some time), injected failures ("the next N calls answer 503 with
// Retry-After"), and a count of the erasures it actually carried out.
package refservice

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProtocolVersion is the version of the protocol the service speaks.
const ProtocolVersion = "v1"

// MaxRequestBytes is the largest request body the service reads.
const MaxRequestBytes = 1 << 20

// Operations, as named in paths, Idempotency-Keys and Async.Ops.
const (
	OpCheck   = "check"
	OpCollect = "collect"
	OpErase   = "erase"
	OpVerify  = "verify"
)

// Options configure a Service.
type Options struct {
	// Token is the bearer token every request must carry. Empty: no authentication (tests of
	// the connector without a Secret only).
	Token string
	// CheckWarnings are returned by /v1/check.
	CheckWarnings []string
	// Async makes operations answer 202 Accepted first.
	Async Async
	// NoSweep leaves the sweep capability out of /v1/check and its endpoints unserved, as a
	// service that predates it (see sweep.go).
	NoSweep bool
}

// Async makes some operations slow, as a processor that works through a queue is.
type Async struct {
	// Ops that answer 202 Accepted to a new Idempotency-Key: collect, erase, verify.
	Ops []string
	// Polls is how many POSTs of a job answer 202 before it completes (at least 1, the first).
	// The job is carried out, on the store as it is then, when the POST that completes it
	// arrives.
	Polls int
	// Delay, when set, also completes a job once this long has passed since its first POST.
	Delay time.Duration
	// RetryAfter is the retryAfterSeconds of a 202 answer (default 1s).
	RetryAfter time.Duration
}

// Failure is an error answer injected by FailNext.
type Failure struct {
	// Status code, e.g. 503.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration
	// Code and Message of the error body.
	Code    string
	Message string
	// EchoIdentifiers appends the request's identifier values to the message, as a careless
	// service might: the connector must scrub them.
	EchoIdentifiers bool
}

// Stats count what the service did.
type Stats struct {
	// Erasures actually carried out (not dry runs, not answers replayed for a known key).
	Erasures int
	// Replays of a stored erase result for a repeated Idempotency-Key.
	Replays int
	// Accepted counts 202 answers.
	Accepted int
}

// Service is the reference service. Its zero value is not usable; call New.
type Service struct {
	mu        sync.Mutex
	opts      Options
	locations []*Location
	jobs      map[string]*job // by Idempotency-Key
	jobsByID  map[string]*job // by the id in statusUrl
	sweeps    []*sweepState   // the most recent sweeps, whose refs can be resolved
	failures  []Failure
	stats     Stats
	now       func() time.Time
}

// job is the work done under one Idempotency-Key.
type job struct {
	id          string
	op          string
	fingerprint [sha256.Size]byte
	started     time.Time
	polls       int
	done        bool
	// result is the body of the 200 answer, kept for erasures so that a repeated key gets the
	// same answer.
	result []byte
}

// New returns a service with no locations.
func New(opts Options) *Service {
	return &Service{
		opts:     opts,
		jobs:     map[string]*job{},
		jobsByID: map[string]*job{},
		now:      time.Now,
	}
}

// AddLocation adds a location with its records.
func (s *Service) AddLocation(l Location) error {
	if err := l.validate(); err != nil {
		return err
	}
	for _, r := range l.Records {
		if _, err := json.Marshal(r.Data); err != nil {
			return fmt.Errorf("location %s: a record cannot be encoded: %w", l.Name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, existing := range s.locations {
		if existing.Name == l.Name {
			return fmt.Errorf("location %s exists", l.Name)
		}
	}
	c := cloneLocation(l)
	s.locations = append(s.locations, &c)
	return nil
}

// Put adds a record to a location, e.g. to make data "reappear" after an erasure.
func (s *Service) Put(location string, rec Record) error {
	if _, err := json.Marshal(rec.Data); err != nil {
		return fmt.Errorf("the record cannot be encoded: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.locations {
		if l.Name == location {
			l.Records = append(l.Records, cloneRecord(rec))
			return nil
		}
	}
	return fmt.Errorf("no location %s", location)
}

// Location returns a copy of a location with its records.
func (s *Service) Location(name string) (Location, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.locations {
		if l.Name == name {
			return cloneLocation(*l), true
		}
	}
	return Location{}, false
}

// Seed is the JSON form of a service's data, as cmd/refservice reads it.
type Seed struct {
	Locations []Location `json:"locations"`
}

// Load adds the locations of a Seed read from r.
func (s *Service) Load(r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var seed Seed
	if err := dec.Decode(&seed); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for _, l := range seed.Locations {
		if err := s.AddLocation(l); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// SetAsync changes which operations are asynchronous, for jobs started from now on.
func (s *Service) SetAsync(a Async) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Async = a
}

// SetToken changes the bearer token the service accepts.
func (s *Service) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Token = token
}

// FailNext makes the next n requests, whatever their path, answer with f.
func (s *Service) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// Stats returns what the service did so far.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// operationRequest is the body of collect, erase and verify.
type operationRequest struct {
	ProtocolVersion string            `json:"protocolVersion"`
	RequestID       string            `json:"requestId"`
	Identifiers     map[string]string `json:"identifiers"`
	// IdentifierKinds says how each identifier compares (email, phone, exact); absent: exact.
	IdentifierKinds map[string]string `json:"identifierKinds,omitempty"`
	// DefaultRegion places phone numbers without a country code.
	DefaultRegion string `json:"defaultRegion,omitempty"`
	DryRun        bool   `json:"dryRun"`
	Deep          bool   `json:"deep"`
}

// ServeHTTP answers the protocol's endpoints.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Answers may carry personal data: no cache on the way may keep them.
	w.Header().Set("Cache-Control", "no-store")
	if f, ok := s.nextFailure(); ok {
		s.writeFailure(w, r, f)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dsr"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
		return
	}
	op, isJob := strings.CutPrefix(r.URL.Path, "/v1/jobs/")
	if isJob {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		s.serveJobStatus(w, op)
		return
	}
	switch r.URL.Path {
	case "/v1/check", "/v1/collect", "/v1/erase", "/v1/verify":
	case "/v1/sweep", "/v1/sweep/resolve":
		if s.sweepOffered() {
			break
		}
		fallthrough
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	op = strings.TrimPrefix(r.URL.Path, "/v1/")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	switch op {
	case OpCheck:
		s.serveCheck(w, body)
		return
	case OpSweep:
		s.serveSweep(w, body)
		return
	case OpSweepResolve:
		s.serveResolve(w, body)
		return
	}
	s.serveOperation(w, r, op, body)
}

func (s *Service) nextFailure() (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return Failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

func (s *Service) writeFailure(w http.ResponseWriter, r *http.Request, f Failure) {
	msg := f.Message
	if f.EchoIdentifiers {
		var req operationRequest
		if b, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes)); err == nil && json.Unmarshal(b, &req) == nil {
			names := make([]string, 0, len(req.Identifiers))
			for name := range req.Identifiers {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				msg += fmt.Sprintf(" %s=%s", name, req.Identifiers[name])
			}
		}
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Round(time.Second)/time.Second)))
	}
	writeError(w, f.Status, f.Code, msg)
}

func (s *Service) authorized(r *http.Request) bool {
	s.mu.Lock()
	token := s.opts.Token
	s.mu.Unlock()
	if token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// readJSONBody reads a request body of at most MaxRequestBytes that must be JSON.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("the body exceeds %d bytes", MaxRequestBytes))
		} else {
			writeError(w, http.StatusBadRequest, "unreadable_body", "the body could not be read")
		}
		return nil, false
	}
	return body, true
}

func (s *Service) serveCheck(w http.ResponseWriter, body []byte) {
	var req struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_request", "the body is not a JSON object")
		return
	}
	if req.ProtocolVersion != ProtocolVersion {
		writeError(w, http.StatusBadRequest, "unsupported_protocol_version", "this service speaks protocol v1")
		return
	}
	s.mu.Lock()
	warnings := append([]string{}, s.opts.CheckWarnings...)
	s.mu.Unlock()
	answer := map[string]any{"protocolVersion": ProtocolVersion, "ok": true, "warnings": warnings}
	if s.sweepOffered() {
		answer["capabilities"] = []string{"sweep"}
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Service) serveOperation(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	var req operationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		// The decoder's message may quote the body, identifiers included: never echo it.
		writeError(w, http.StatusBadRequest, "malformed_request", "the body is not a valid request")
		return
	}
	switch {
	case req.ProtocolVersion != ProtocolVersion:
		writeError(w, http.StatusBadRequest, "unsupported_protocol_version", "this service speaks protocol v1")
		return
	case req.RequestID == "":
		writeError(w, http.StatusBadRequest, "missing_request_id", "requestId is required")
		return
	case !hasIdentifier(req.Identifiers):
		writeError(w, http.StatusBadRequest, "no_identifiers", "identifiers must hold at least one non-empty value")
		return
	case kindsProblem(req) != "":
		writeError(w, http.StatusBadRequest, "bad_identifier_kinds", kindsProblem(req))
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		writeError(w, http.StatusBadRequest, "missing_idempotency_key", "the Idempotency-Key header is required")
		return
	}
	fp := fingerprint(op, req)
	// Erasures of one service are serialised: the store is small and correctness is the point.
	s.mu.Lock()
	defer s.mu.Unlock()
	j, known := s.jobs[key]
	if known && j.fingerprint != fp {
		writeError(w, http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
		return
	}
	if !known {
		j = &job{id: newJobID(), op: op, fingerprint: fp, started: s.now()}
		if !slices.Contains(s.opts.Async.Ops, op) {
			s.finish(w, key, j, req)
			return
		}
		s.jobs[key] = j
		s.jobsByID[j.id] = j
		s.accept(w, r, j)
		return
	}
	if j.done {
		s.stats.Replays++
		writeRaw(w, http.StatusOK, j.result)
		return
	}
	j.polls++
	if j.polls < max(s.opts.Async.Polls, 1) && (s.opts.Async.Delay <= 0 || s.now().Sub(j.started) < s.opts.Async.Delay) {
		s.accept(w, r, j)
		return
	}
	s.finish(w, key, j, req)
}

// finish carries out a job and answers its result. An erasure's result is kept under its key;
// a read is forgotten once answered, so that the next read with the key reads again.
func (s *Service) finish(w http.ResponseWriter, key string, j *job, req operationRequest) {
	var result any
	switch j.op {
	case OpCollect:
		result = collect(s.locations, newSubject(req))
	case OpVerify:
		result = verify(s.locations, newSubject(req), req.Deep)
	case OpErase:
		result = erase(s.locations, newSubject(req), req.DryRun)
		if !req.DryRun {
			s.stats.Erasures++
		}
	}
	body, err := json.Marshal(result)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "the result could not be encoded")
		return
	}
	if j.op == OpErase && !req.DryRun {
		j.done, j.result = true, body
		s.jobs[key] = j
		s.jobsByID[j.id] = j
	} else {
		delete(s.jobs, key)
		delete(s.jobsByID, j.id)
	}
	writeRaw(w, http.StatusOK, body)
}

func (s *Service) accept(w http.ResponseWriter, r *http.Request, j *job) {
	s.stats.Accepted++
	retryAfter := s.opts.Async.RetryAfter
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	seconds := int(max(retryAfter.Round(time.Second)/time.Second, 1))
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	writeJSON(w, http.StatusAccepted, map[string]any{
		"protocolVersion":   ProtocolVersion,
		"status":            "pending",
		"statusUrl":         mountPrefix(r) + "/v1/jobs/" + j.id,
		"retryAfterSeconds": seconds,
	})
}

// serveJobStatus tells whether a job is done. It never returns the result: that holds personal
// data, and comes only in answer to the POST that carries the subject's identifiers.
func (s *Service) serveJobStatus(w http.ResponseWriter, id string) {
	s.mu.Lock()
	j, ok := s.jobsByID[id]
	done := ok && j.done
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such job")
		return
	}
	status := "pending"
	if done {
		status = "done"
	}
	writeJSON(w, http.StatusOK, map[string]any{"protocolVersion": ProtocolVersion, "status": status})
}

// mountPrefix is the path the service is mounted under (by http.StripPrefix), so that statusUrl
// works behind a prefix.
func mountPrefix(r *http.Request) string {
	full := r.URL.Path
	if r.RequestURI != "" {
		if path, _, _ := strings.Cut(r.RequestURI, "?"); path != "" {
			full = path
		}
	}
	return strings.TrimSuffix(full, r.URL.Path)
}

func hasIdentifier(ids map[string]string) bool {
	for _, v := range ids {
		if v != "" {
			return true
		}
	}
	return false
}

// fingerprint identifies a request, so that an Idempotency-Key reused for another one is caught.
func fingerprint(op string, req operationRequest) [sha256.Size]byte {
	names := make([]string, 0, len(req.Identifiers))
	for name := range req.Identifiers {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode([]any{op, req.RequestID, req.DryRun, req.Deep})
	for _, name := range names {
		_ = enc.Encode([]string{name, req.Identifiers[name], req.IdentifierKinds[name]})
	}
	_ = enc.Encode(req.DefaultRegion)
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func newJobID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding failed"}}`)
	}
	writeRaw(w, status, body)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
