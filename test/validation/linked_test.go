package validation

import (
	"context"
	"testing"
)

// linkedStore uses derived identifiers and lists one table twice (the subject's own tickets are
// deleted, the alternative contact on someone else's ticket is masked).
const linkedStore = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DataStore
spec:
  type: postgres
  connection:
    secretRef: {name: shop-db, key: dsn}
  tables:
  - name: customer
    match: [{column: email, identifier: email}]
    provides: [{identifier: customerId, column: id}, {identifier: addressId, column: address_id}]
    action: delete
  - name: orders
    match: [{column: customer_id, identifier: customerId}]
    provides: [{identifier: orderId, column: id}]
    action: delete
  - name: service_request
    match: [{column: customer_id, identifier: customerId}]
    action: delete
  - name: service_request
    match: [{column: alt_email, identifier: email}]
    action: mask
    mask: [{column: alt_email, strategy: nullify}]
`

func TestALinkedMappingIsAccepted(t *testing.T) {
	namespace := createNamespace(t, "linked")
	obj := object(t, linkedStore, "linked", namespace)
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("the linked store was refused: %v", err)
	}
	got, ok := lookup(obj.Object, "spec.tables[0].provides[1].column")
	if !ok || got != "address_id" {
		t.Fatalf("provides was not stored: %v (%v)", got, ok)
	}
}
