package httpstore

import privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"

// IdentifierNames: the service maps its own data, so it is sent every identifier of a request and
// decides itself which it uses.
func (p *Provider) IdentifierNames(*privacyv1alpha1.DataStoreSpec) (names []string, acceptsAny bool) {
	return nil, true
}
