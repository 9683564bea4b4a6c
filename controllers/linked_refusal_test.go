package controllers_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// Two stores whose mappings derive customerId and orderId from each other form a cycle that only
// shows across stores: the request fails before anything is erased, naming the identifiers and
// the mappings that close it.
func TestLinkedCycleAcrossStoresFailsTheRequest(t *testing.T) {
	db, dsn := linkedShop(t)
	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	conn := privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "shop-conn", Key: "dsn"}}
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crm"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypePostgres, Connection: conn,
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "customer", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}}},
			{Name: "orders", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "id", Identifier: "orderId"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "customer_id"}}},
		}}})
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "billing"}, Spec: privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypePostgres, Connection: conn,
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "orders", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "orderId", Column: "id"}}},
		}}})
	create(t, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	create(t, deletionRequest(ns, "erase-jane", "jane"))

	dr := waitDR(t, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonMappingInvalid, settle)
	msg := condition(dr.Status.Conditions, privacyv1alpha1.ConditionReady)
	for _, want := range []string{"derived from itself", "customerId", "orderId", "DataStore"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the reason does not say %q: %s", want, msg)
		}
	}
	if dr.Status.Phase != privacyv1alpha1.PhaseFailed {
		t.Errorf("phase %s, want Failed", dr.Status.Phase)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM customer`) + countRows(t, db, `SELECT COUNT(*) FROM orders`); n != 5 {
		t.Errorf("customers and orders: %d rows, want 5 (nothing erased)", n)
	}
}
