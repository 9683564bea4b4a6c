package connector

import (
	"slices"
	"sort"
	"strings"
)

// Values are a subject's identifier values by name, several per name: a person may have two
// email addresses in the Secret and many order ids derived from their customer row. Like
// Identifiers, the type refuses to print itself.
type Values map[string][]string

// String hides the values.
func (Values) String() string { return redacted }

// GoString hides the values from %#v.
func (Values) GoString() string { return redacted }

// MarshalLog hides the values from logr.
func (Values) MarshalLog() any { return redacted }

// Names returns the identifier names that have at least one value, sorted.
func (v Values) Names() []string {
	names := make([]string, 0, len(v))
	for name, vals := range v {
		if len(vals) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Count is the number of values over all names.
func (v Values) Count() int {
	n := 0
	for _, vals := range v {
		n += len(vals)
	}
	return n
}

// Add adds values to name, skipping empty and repeated ones, and reports how many were new.
func (v Values) Add(name string, values ...string) int {
	// A subject may have thousands of derived values (order ids): past a few, repeats are found
	// through a set, or merging two lists would cost the product of their lengths.
	var seen map[string]bool
	if len(values) > 1 && len(v[name])+len(values) > 16 {
		seen = make(map[string]bool, len(v[name])+len(values))
		for _, value := range v[name] {
			seen[value] = true
		}
	}
	added := 0
	for _, value := range values {
		if value == "" {
			continue
		}
		if seen != nil {
			if seen[value] {
				continue
			}
			seen[value] = true
		} else if slices.Contains(v[name], value) {
			continue
		}
		v[name] = append(v[name], value)
		added++
	}
	return added
}

// Has reports whether value is one of name's values.
func (v Values) Has(name, value string) bool { return slices.Contains(v[name], value) }

// Clone is a deep copy.
func (v Values) Clone() Values {
	out := make(Values, len(v))
	for name, vals := range v {
		out[name] = slices.Clone(vals)
	}
	return out
}

// Merge adds every value of other.
func (v Values) Merge(other Values) {
	for name, vals := range other {
		v.Add(name, vals...)
	}
}

// MergeDisjoint adds every value of other, which the caller knows to be new to v and free of
// repeats (values a derivation found beyond those it started from): no set is built to find
// repeats, which for thousands of values costs more than the rest of the merge.
func (v Values) MergeDisjoint(other Values) {
	for name, vals := range other {
		if len(vals) > 0 {
			v[name] = append(v[name], vals...)
		}
	}
}

// Scrub replaces every value in msg by "[identifier]", longest first, as Identifiers.Scrub does.
func (v Values) Scrub(msg string) string {
	var all []string
	for _, vals := range v {
		for _, value := range vals {
			if value != "" {
				all = append(all, value)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	for _, value := range all {
		msg = strings.ReplaceAll(msg, value, "[identifier]")
	}
	return msg
}

// AllValues are every identifier value of the request: the single values of Identifiers (the
// Secret) and the values of Values (several per name, derived ones included), without empty or
// repeated values. Shared values are not in it: they never select a row to change.
func (r Request) AllValues() Values {
	out := make(Values, len(r.Identifiers)+len(r.Values))
	for name, vals := range r.Values {
		out[name] = append(make([]string, 0, len(vals)+1), vals...)
	}
	for name, value := range r.Identifiers {
		out[name] = append(out[name], value)
	}
	// Sorted, repeats are neighbours: thousands of derived values need no set to drop them.
	for name, vals := range out {
		sort.Strings(vals)
		vals = slices.Compact(vals)
		if len(vals) > 0 && vals[0] == "" {
			vals = vals[1:]
		}
		if len(vals) == 0 {
			delete(out, name)
			continue
		}
		out[name] = vals
	}
	return out
}

// ScrubAll scrubs every value the request carries, shared ones included, from msg.
func (r Request) ScrubAll(msg string) string {
	all := r.AllValues()
	all.Merge(r.Shared)
	return all.Scrub(msg)
}

// ValueSet is Values with a set beside them: a subject's derived values can run to thousands
// (order ids), and finding repeats in the lists themselves costs the square of their number.
type ValueSet struct {
	values Values
	has    map[string]map[string]struct{}
}

// NewValueSet holds the values of v, without empty or repeated ones.
func NewValueSet(v Values) *ValueSet {
	s := &ValueSet{values: Values{}, has: map[string]map[string]struct{}{}}
	s.Merge(v)
	return s
}

// Add adds value to name and reports whether it was new (an empty value never is).
func (s *ValueSet) Add(name, value string) bool {
	if value == "" || s.Has(name, value) {
		return false
	}
	if s.has[name] == nil {
		s.has[name] = map[string]struct{}{}
	}
	s.has[name][value] = struct{}{}
	s.values[name] = append(s.values[name], value)
	return true
}

// Has reports whether value is one of name's values.
func (s *ValueSet) Has(name, value string) bool {
	_, ok := s.has[name][value]
	return ok
}

// Merge adds every value of v.
func (s *ValueSet) Merge(v Values) {
	for name, vals := range v {
		for _, value := range vals {
			s.Add(name, value)
		}
	}
}

// Missing counts the distinct values of vals, empty ones aside, that name does not hold.
func (s *ValueSet) Missing(name string, vals []string) int {
	var extra map[string]struct{}
	for _, v := range vals {
		if v == "" || s.Has(name, v) {
			continue
		}
		if extra == nil {
			extra = map[string]struct{}{}
		}
		extra[v] = struct{}{}
	}
	return len(extra)
}

// Values are the values held, in the order they were added; the set keeps using them.
func (s *ValueSet) Values() Values { return s.values }
