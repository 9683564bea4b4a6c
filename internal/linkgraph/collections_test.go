package linkgraph

import (
	"slices"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// A mongodb store's collections are mappings like tables: their match and provides identifiers
// take part in the order of derivation across stores.
func TestFromSpecCollections(t *testing.T) {
	spec := &privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeMongoDB, Collections: []privacyv1alpha1.CollectionMapping{
		{Name: "shop.customers", Match: []privacyv1alpha1.FieldMatch{{Field: "email", Identifier: "email"}},
			Provides: []privacyv1alpha1.FieldProvide{{Identifier: "customerId", Field: "_id"}}},
		{Name: "shop.orders", Match: []privacyv1alpha1.FieldMatch{{Field: "customerId", Identifier: "customerId"}}},
	}}
	nodes := FromSpec("m", spec)
	if len(nodes) != 2 {
		t.Fatalf("%d nodes", len(nodes))
	}
	if nodes[0].Mapping != "collection shop.customers (collections[0])" || !slices.Equal(nodes[0].Provides, []string{"customerId"}) ||
		!slices.Equal(nodes[1].Match, []string{"customerId"}) || nodes[1].Index != 1 {
		t.Fatalf("nodes: %+v", nodes)
	}
}
