package redis

import (
	"sort"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// Keys are exact bytes: Redis cannot compare a key's part case-insensitively or as a phone
// number. So a pattern names the normalised form of an email or phone identifier (by the
// identifier's name, as in SQL mappings): "cart:{email}" finds cart:customer-1@example.com
// for a subject given as " Customer-1@Example.com", and "sms:{phone}" finds sms:+15550100001
// for "+1 (555) 010-0001". Applications that build keys from raw input should normalise it the
// same way (trimmed, case-folded, IDNA domain; E.164).

// keyIdentifiers are the subject's identifiers as patterns name them: email and phone values
// normalised, every other value as given. A value that does not normalise (a phone number
// without a country code and no default region) stays as given.
func (c *client) keyIdentifiers(ids connector.Identifiers) connector.Identifiers {
	out := make(connector.Identifiers, len(ids))
	for name, v := range ids {
		out[name] = c.norm.Key(normalize.KindFor(name, ""), v)
	}
	return out
}

// foldedEmails are the subject's email addresses as a case-folded key name holds them (see
// normalize.FoldCase): the normalised address and its other lower-cased spellings, the domain
// in ASCII or Unicode. Deep verification looks for them in every folded key name, so that a key
// an application wrote from a raw address in another letter case is reported as remaining.
func (c *client) foldedEmails(ids connector.Identifiers) []string {
	seen := map[string]bool{}
	var out []string
	for name, v := range ids {
		if normalize.KindFor(name, "") != normalize.Email {
			continue
		}
		key, ok := c.norm.Normalize(normalize.Email, v)
		if !ok {
			continue
		}
		for _, cand := range normalize.EmailCandidates(v, key) {
			if f := normalize.FoldCase(cand); f != "" && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}
