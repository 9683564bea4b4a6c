package validation

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

const mongoStore = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DataStore
spec:
  type: mongodb
  connection:
    secretRef: {name: shop-mongo, key: uri}
  collections:
  - name: shop.customers
    match:
    - {field: profile.email, identifier: email}
    provides:
    - {identifier: customerId, field: _id}
    action: mask
    mask:
    - {field: profile.phone, strategy: hash}
  - name: shop.orders.archive
    match:
    - {field: customerId, identifier: customerId}
    action: retain
    retainReason: tax law
`

// TestMongoDBStores: spec.collections is required for and only allowed on mongodb stores, names
// are <database>.<collection>, field paths dotted identifiers, and the table rules for retain and
// mask apply.
func TestMongoDBStores(t *testing.T) {
	ctx := context.Background()
	namespace := createNamespace(t, "mongodb")
	if err := env.Client.Create(ctx, object(t, mongoStore, "valid", namespace)); err != nil {
		t.Fatalf("a valid mongodb store was refused: %v", err)
	}
	wholeDatabase := object(t, mongoStore, "deep-database", namespace)
	set("spec.verification", map[string]any{"deepScope": "database"})(wholeDatabase.Object)
	if err := env.Client.Create(ctx, wholeDatabase); err != nil {
		t.Fatalf("deepScope database on a mongodb store was refused: %v", err)
	}
	refused := []struct {
		name string
		base string
		set  func(map[string]any)
		want []string
	}{
		{"mongodb store without collections", mongoStore, del("spec.collections"),
			[]string{"spec.collections", "collections is required for mongodb stores"}},
		{"collections on a postgres store", postgresStore, set("spec.collections", []any{map[string]any{
			"name": "shop.users", "match": []any{map[string]any{"field": "email", "identifier": "email"}}, "action": "delete"}}),
			[]string{"spec.collections", "collections is only allowed for mongodb stores"}},
		{"tables on a mongodb store", mongoStore, set("spec.tables", []any{map[string]any{
			"name": "users", "match": []any{map[string]any{"column": "email", "identifier": "email"}}, "action": "delete"}}),
			[]string{"spec.tables", "tables is only allowed for postgres, mysql and sqlite stores"}},
		{"collection name without database", mongoStore, set("spec.collections[0].name", "customers"),
			[]string{"spec.collections[0].name", "should match"}},
		{"operator as field", mongoStore, set("spec.collections[0].match[0].field", "$where"),
			[]string{"spec.collections[0].match[0].field", "should match"}},
		{"positional path", mongoStore, set("spec.collections[0].mask[0].field", "phones.$[]"),
			[]string{"spec.collections[0].mask[0].field", "should match"}},
		{"numeric path element", mongoStore, set("spec.collections[0].provides[0].field", "ids.0"),
			[]string{"spec.collections[0].provides[0].field", "should match"}},
		{"retain without reason", mongoStore, del("spec.collections[1].retainReason"),
			[]string{"spec.collections[1].retainReason", "retainReason is required when action is retain"}},
		{"mask without fields", mongoStore, del("spec.collections[0].mask"),
			[]string{"spec.collections[0].mask", "mask is required when action is mask"}},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, fmt.Sprintf("refused-%d", i), namespace)
			tc.set(obj.Object)
			err := env.Client.Create(ctx, obj)
			if err == nil || !apierrors.IsInvalid(err) {
				t.Fatalf("want an invalid error, got %v:\n%s", err, dump(obj))
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the message does not say %q:\n%v", want, err)
				}
			}
		})
	}
}
