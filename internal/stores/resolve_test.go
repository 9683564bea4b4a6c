package stores_test

import (
	"slices"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/all"
	"github.com/dsr-operator/dsr-operator/internal/stores"
)

// The resolver asks the store's connector which identifiers its mapping uses.
func TestIdentifierNames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   privacyv1alpha1.DataStoreSpec
		want   []string
		wantOK bool
	}{
		{"redis", privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeRedis,
			Keys: []privacyv1alpha1.KeyMapping{{Pattern: "session:{userId}:*"}, {Pattern: "cart:{email}"}}}, []string{"email", "userId"}, true},
		{"postgres", privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypePostgres,
			Tables: []privacyv1alpha1.TableMapping{{Name: "users", Match: []privacyv1alpha1.ColumnMatch{{Column: "mail", Identifier: "email"}}}}}, []string{"email"}, true},
		{"http accepts any", privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeHTTP}, nil, false},
		{"no connector for the type", privacyv1alpha1.DataStoreSpec{Type: "cassandra"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := stores.IdentifierNames(&tc.spec)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) || ok != tc.wantOK {
				t.Errorf("IdentifierNames = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
