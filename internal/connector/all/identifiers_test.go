package all_test

import (
	"slices"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/all"
)

// Every registered provider says which identifier names a spec of its type uses: the request
// controllers refuse a request whose identifiers no store uses, so a wrong answer either refuses
// good requests or lets a typo erase nothing.
func TestIdentifierNames(t *testing.T) {
	tables := []privacyv1alpha1.TableMapping{
		{Name: "users", Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}, {Column: "id", Identifier: "userId"}}},
		{Name: "orders", Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_email", Identifier: "email"}}},
	}
	keys := []privacyv1alpha1.KeyMapping{
		{Pattern: "session:{userId}:*"},
		{Pattern: "cart:{tenant.id}:{email}"},
		{Pattern: "static-key-without-placeholder"},
	}
	for _, tc := range []struct {
		storeType  privacyv1alpha1.StoreType
		spec       privacyv1alpha1.DataStoreSpec
		want       []string
		acceptsAny bool
	}{
		{privacyv1alpha1.StoreTypePostgres, privacyv1alpha1.DataStoreSpec{Tables: tables}, []string{"email", "email", "userId"}, false},
		{privacyv1alpha1.StoreTypeMySQL, privacyv1alpha1.DataStoreSpec{Tables: tables}, []string{"email", "email", "userId"}, false},
		{privacyv1alpha1.StoreTypeSQLite, privacyv1alpha1.DataStoreSpec{Tables: tables}, []string{"email", "email", "userId"}, false},
		{privacyv1alpha1.StoreTypeSQLite, privacyv1alpha1.DataStoreSpec{}, nil, false},
		{privacyv1alpha1.StoreTypeRedis, privacyv1alpha1.DataStoreSpec{Keys: keys}, []string{"email", "tenant.id", "userId"}, false},
		{privacyv1alpha1.StoreTypeRedis, privacyv1alpha1.DataStoreSpec{}, nil, false},
		{privacyv1alpha1.StoreTypeHTTP, privacyv1alpha1.DataStoreSpec{}, nil, true},
		{privacyv1alpha1.StoreTypeMongoDB, privacyv1alpha1.DataStoreSpec{Collections: []privacyv1alpha1.CollectionMapping{
			{Name: "shop.users", Match: []privacyv1alpha1.FieldMatch{{Field: "email", Identifier: "email"}, {Field: "profile.id", Identifier: "userId"}}},
			{Name: "shop.orders", Match: []privacyv1alpha1.FieldMatch{{Field: "customerId", Identifier: "customerId"}}},
		}}, []string{"customerId", "email", "userId"}, false},
		{privacyv1alpha1.StoreTypeS3, privacyv1alpha1.DataStoreSpec{Objects: []privacyv1alpha1.ObjectMapping{{Bucket: "b12", Key: "u/{userId}/{email}"}}}, []string{"email", "userId"}, false},
	} {
		t.Run(string(tc.storeType), func(t *testing.T) {
			p, err := connector.ProviderFor(tc.storeType)
			if err != nil {
				t.Fatal(err)
			}
			spec := tc.spec
			spec.Type = tc.storeType
			got, acceptsAny := p.IdentifierNames(&spec)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) || acceptsAny != tc.acceptsAny {
				t.Errorf("IdentifierNames = %q, acceptsAny %v; want %q, %v", got, acceptsAny, tc.want, tc.acceptsAny)
			}
		})
	}
}
