package refservice

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Sweep operations, as named in paths (docs/connector-protocol.md, "Sweeps").
const (
	OpSweep        = "sweep"
	OpSweepResolve = "sweep/resolve"
)

// keptSweeps is how many recent sweeps' refs the service can resolve.
const keptSweeps = 8

// maxSweepPage bounds the digests of one answer.
const maxSweepPage = 5000

// sweepState is what a sweep handed out: each ref with the value it stands for. The values are
// the service's own data, kept in its memory for the sweep; they leave it only when resolved.
type sweepState struct {
	id   string
	refs map[string]string
}

type sweepRequest struct {
	ProtocolVersion string   `json:"protocolVersion"`
	SweepID         string   `json:"sweepId"`
	Salt            string   `json:"salt"`
	Kinds           []string `json:"kinds"`
	Cursor          string   `json:"cursor"`
	PageSize        int      `json:"pageSize"`
}

type sweepDigest struct {
	Ref        string `json:"ref"`
	Location   string `json:"location"`
	Identifier string `json:"identifier"`
	Kind       string `json:"kind"`
	Digest     string `json:"digest"`
	Retained   bool   `json:"retained"`
}

func (s *Service) sweepOffered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.opts.NoSweep
}

// serveSweep answers one page of salted digests. The cursor is "location index.record index"
// of the next record to read: positions, never values.
func (s *Service) serveSweep(w http.ResponseWriter, body []byte) {
	var req sweepRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_request", "the body is not a sweep request")
		return
	}
	salt, err := base64.StdEncoding.DecodeString(req.Salt)
	switch {
	case req.ProtocolVersion != ProtocolVersion:
		writeError(w, http.StatusBadRequest, "unsupported_protocol_version", "this service speaks protocol v1")
		return
	case req.SweepID == "" || len(req.SweepID) > 200:
		writeError(w, http.StatusBadRequest, "bad_sweep_id", "sweepId must be 1 to 200 characters")
		return
	case err != nil || len(salt) < 16:
		writeError(w, http.StatusBadRequest, "bad_salt", "salt must be the standard base64 of at least 16 bytes")
		return
	}
	page := req.PageSize
	if page <= 0 || page > maxSweepPage {
		page = maxSweepPage
	}
	loc, rec, ok := parseCursor(req.Cursor)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_cursor", "cursor is not one this service handed out")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sweepLocked(req.SweepID)
	digests := []sweepDigest{}
	next := ""
	for ; loc < len(s.locations); loc, rec = loc+1, 0 {
		l := s.locations[loc]
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range l.Match {
				if !yield(n) {
					return
				}
			}
		})
		for ; rec < len(l.Records); rec++ {
			if len(digests) >= page {
				next = fmt.Sprintf("%d.%d", loc, rec)
				break
			}
			for _, name := range names {
				kind := normalize.KindFor(name, "")
				value, isString := l.Records[rec].Data[l.Match[name]].(string)
				if !isString || !slices.Contains(req.Kinds, string(kind)) {
					continue
				}
				h, ok := dropHash(kind, value)
				if !ok {
					continue
				}
				salted := sha256.Sum256(append(slices.Clone(salt), h[:]...))
				ref := newJobID()
				st.refs[ref] = value
				digests = append(digests, sweepDigest{Ref: ref, Location: l.Name, Identifier: name, Kind: string(kind),
					Digest: base64.StdEncoding.EncodeToString(salted[:]), Retained: l.Action == ActionRetain})
			}
		}
		if next != "" {
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"protocolVersion": ProtocolVersion, "digests": digests, "nextCursor": next})
}

// serveResolve answers the values of refs the sweep handed out; unknown refs are left out.
func (s *Service) serveResolve(w http.ResponseWriter, body []byte) {
	var req struct {
		ProtocolVersion string   `json:"protocolVersion"`
		SweepID         string   `json:"sweepId"`
		Refs            []string `json:"refs"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.ProtocolVersion != ProtocolVersion {
		writeError(w, http.StatusBadRequest, "malformed_request", "the body is not a v1 resolve request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type resolved struct {
		Ref   string `json:"ref"`
		Value string `json:"value"`
	}
	values := []resolved{}
	for _, st := range s.sweeps {
		if st.id != req.SweepID {
			continue
		}
		refs := slices.Clone(req.Refs)
		sort.Strings(refs)
		for _, ref := range slices.Compact(refs) {
			if v, ok := st.refs[ref]; ok {
				values = append(values, resolved{Ref: ref, Value: v})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"protocolVersion": ProtocolVersion, "values": values})
}

// sweepLocked finds or starts the state of sweep id, forgetting the oldest beyond keptSweeps.
func (s *Service) sweepLocked(id string) *sweepState {
	for _, st := range s.sweeps {
		if st.id == id {
			return st
		}
	}
	st := &sweepState{id: id, refs: map[string]string{}}
	s.sweeps = append(s.sweeps, st)
	if len(s.sweeps) > keptSweeps {
		s.sweeps = s.sweeps[len(s.sweeps)-keptSweeps:]
	}
	return st
}

func parseCursor(c string) (loc, rec int, ok bool) {
	if c == "" {
		return 0, 0, true
	}
	a, b, found := strings.Cut(c, ".")
	l, err1 := strconv.Atoi(a)
	r, err2 := strconv.Atoi(b)
	if !found || err1 != nil || err2 != nil || l < 0 || r < 0 {
		return 0, 0, false
	}
	return l, r, true
}

// dropHash is SHA-256 of value normalised as the DROP platform prescribes, written from the
// protocol document: an email trimmed and lower-cased; a phone number's ASCII digits, the last
// ten of them (a number with fewer, or with digits of other scripts, has no digest).
func dropHash(kind normalize.Kind, value string) ([sha256.Size]byte, bool) {
	var norm string
	switch kind {
	case normalize.Email:
		norm = strings.ToLower(strings.TrimSpace(value))
	case normalize.Phone:
		var b strings.Builder
		for _, r := range value {
			switch {
			case r >= '0' && r <= '9':
				b.WriteRune(r)
			case unicode.IsDigit(r):
				return [sha256.Size]byte{}, false
			}
		}
		norm = b.String()
		if len(norm) < 10 {
			return [sha256.Size]byte{}, false
		}
		norm = norm[len(norm)-10:]
	}
	if norm == "" {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(norm)), true
}
