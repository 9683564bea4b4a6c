package normalize

import (
	"fmt"
	"regexp"
	"strings"
)

// Kind says how the values of an identifier compare.
type Kind string

const (
	// Exact compares byte for byte: opaque ids, hashes.
	Exact Kind = "exact"
	// Email trims surrounding white space, folds the case of the whole address (Unicode-aware)
	// and writes an internationalised domain in its ASCII (IDNA) form.
	Email Kind = "email"
	// Phone compares numbers whatever their formatting: spaces, dashes, dots, brackets, a
	// leading + or 00, or no country code (resolved with the default region). The key is E.164.
	Phone Kind = "phone"
)

// Kinds are the built-in kinds, in the order the docs list them.
var Kinds = []Kind{Email, Phone, Exact}

// KindFor is the kind of a match on identifier: as when set, otherwise by the identifier's name
// (email*, phone* in any letter case), otherwise exact.
func KindFor(identifier, as string) Kind {
	if as != "" {
		return Kind(as)
	}
	name := strings.ToLower(identifier)
	switch {
	case strings.HasPrefix(name, "email"):
		return Email
	case strings.HasPrefix(name, "phone"):
		return Phone
	default:
		return Exact
	}
}

// Valid reports whether k is a built-in kind.
func (k Kind) Valid() bool {
	return k == Exact || k == Email || k == Phone
}

var regionPattern = regexp.MustCompile(`^[A-Z]{2}$`)

// ValidateRegion checks a default phone region: empty (none) or two upper-case letters that
// name a region with a calling code.
func ValidateRegion(region string) error {
	if region == "" {
		return nil
	}
	if !regionPattern.MatchString(region) || !knownRegion(region) {
		return fmt.Errorf("default region %q is not a known two-letter region (ISO 3166-1 alpha-2)", region)
	}
	return nil
}

// Normalizer turns values into keys under one default phone region. The zero value has no
// default region: a phone number without a country code then keeps its own spelling as its key.
type Normalizer struct {
	// Region resolves phone numbers written without a country code, e.g. "US".
	Region string
}

// Key is what v compares as under kind: equal keys match, different keys never do.
func (n Normalizer) Key(kind Kind, v string) string {
	if norm, ok := n.Normalize(kind, v); ok {
		return norm
	}
	return v
}

// Normalize is v's normalised form under kind; ok is false when v is not a value of that kind
// (then it only matches its own spelling).
func (n Normalizer) Normalize(kind Kind, v string) (string, bool) {
	switch kind {
	case Email:
		return normalizeEmail(v)
	case Phone:
		return normalizePhone(v, n.Region)
	default:
		return v, true
	}
}

// Match reports whether a and b identify the same subject under kind.
func (n Normalizer) Match(kind Kind, a, b string) bool {
	return n.Key(kind, a) == n.Key(kind, b)
}
