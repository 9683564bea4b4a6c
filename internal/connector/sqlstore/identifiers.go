package sqlstore

import privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"

// IdentifierNames returns the identifiers the tables match on, in spec order, repeats included.
func (p *Provider) IdentifierNames(spec *privacyv1alpha1.DataStoreSpec) (names []string, acceptsAny bool) {
	for _, t := range spec.Tables {
		for _, m := range t.Match {
			names = append(names, m.Identifier)
		}
	}
	return names, false
}
