package refservice

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// subject is the person a request names: identifier values and how each compares. Protocol v1
// sends the kind of each identifier in identifierKinds (email, phone, exact); a request without
// it compares exactly, as v1 did before kinds.
type subject struct {
	ids   map[string]string
	kinds map[string]normalize.Kind
	norm  normalize.Normalizer
}

func newSubject(req operationRequest) subject {
	s := subject{ids: req.Identifiers, kinds: map[string]normalize.Kind{}, norm: normalize.Normalizer{Region: req.DefaultRegion}}
	for name, kind := range req.IdentifierKinds {
		s.kinds[name] = normalize.Kind(kind)
	}
	return s
}

// kindsProblem says what is wrong with the request's kinds and region, or "". It never quotes
// an identifier value.
func kindsProblem(req operationRequest) string {
	for _, name := range slices.Sorted(maps.Keys(req.IdentifierKinds)) {
		if !normalize.Kind(req.IdentifierKinds[name]).Valid() {
			return fmt.Sprintf("identifierKinds: identifier %q has unknown kind %q", name, req.IdentifierKinds[name])
		}
	}
	if err := normalize.ValidateRegion(req.DefaultRegion); err != nil {
		return "defaultRegion: " + err.Error()
	}
	return ""
}

func (s subject) kind(name string) normalize.Kind {
	if k, ok := s.kinds[name]; ok {
		return k
	}
	return normalize.Exact
}

// matches reports whether stored, the value of identifier name in a record, is the subject's.
func (s subject) matches(name, stored string) bool {
	v := s.ids[name]
	if v == "" {
		return false
	}
	return s.norm.Match(s.kind(name), v, stored)
}

// searchValues are what deep verification looks for: every value as sent and, for email and
// phone identifiers, its normalised form.
func (s subject) searchValues() []string {
	seen := map[string]bool{}
	var out []string
	for name, v := range s.ids {
		for _, x := range []string{v, s.norm.Key(s.kind(name), v)} {
			if x != "" && !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
	}
	sort.Strings(out)
	return out
}
