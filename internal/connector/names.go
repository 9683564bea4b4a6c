package connector

import (
	"strings"
	"unicode/utf8"
)

// MinContainsRunes: deep verification looks for identifier values at least this long anywhere in
// a name (a key, an object key); shorter ones ("7", "ab") only as a whole segment of it, so that a
// user id "7" does not report every key holding a 7. It is the SQL connectors' threshold too.
const MinContainsRunes = 4

// NameHolds reports whether name holds v: anywhere if v is long enough, else delimited on both
// sides by the name's start or end or a byte that is not an ASCII letter or digit.
func NameHolds(name, v string) bool {
	if utf8.RuneCountInString(v) >= MinContainsRunes {
		return strings.Contains(name, v)
	}
	for from := 0; from+len(v) <= len(name); {
		i := strings.Index(name[from:], v)
		if i < 0 {
			return false
		}
		start, end := from+i, from+i+len(v)
		if (start == 0 || !alnum(name[start-1])) && (end == len(name) || !alnum(name[end])) {
			return true
		}
		from = start + 1
	}
	return false
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// MaxExpansions caps the names one template (a key pattern, an object key) is expanded to for
// one subject: a template naming two identifiers with a thousand values each would otherwise
// mean a million lookups.
const MaxExpansions = 10000

// Expansions are the single-valued identifier sets a template naming identifiers (in order,
// repeats allowed) is expanded with: every combination of their values (two emails and three
// order ids give "order:{email}:{orderId}" six keys), at most MaxExpansions. A template naming
// an identifier without values gets none.
func Expansions(names []string, all Values) []Identifiers {
	out := []Identifiers{{}}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		values := all[name]
		if len(values) == 0 {
			return nil
		}
		next := make([]Identifiers, 0, min(len(out)*len(values), MaxExpansions))
		for _, ids := range out {
			for _, v := range values {
				if len(next) == MaxExpansions {
					break
				}
				grown := make(Identifiers, len(ids)+1)
				for k, x := range ids {
					grown[k] = x
				}
				grown[name] = v
				next = append(next, grown)
			}
		}
		out = next
	}
	return out
}
