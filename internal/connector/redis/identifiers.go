package redis

import (
	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// IdentifierNames returns the placeholders of the key patterns, in spec order, repeats included.
// A pattern that does not parse still names its placeholders: the store's own status reports the
// pattern, and a request naming that identifier is not refused for it.
func (p *Provider) IdentifierNames(spec *privacyv1alpha1.DataStoreSpec) (names []string, acceptsAny bool) {
	for _, k := range spec.Keys {
		names = append(names, connector.TemplateNames(k.Pattern)...)
	}
	return names, false
}
