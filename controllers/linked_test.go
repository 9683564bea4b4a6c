package controllers_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// linkedShop is a PostgreSQL shop whose orders and order items hang off customer.id: only the
// customer row holds the email. Customer 2 is a bystander with a near-miss address.
func linkedShop(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn, err := teststore.SharedPostgres(t).CreateDatabase(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for _, stmt := range []string{
		`CREATE TABLE customer (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL)`,
		`CREATE INDEX customer_email ON customer (email)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customer (id))`,
		`CREATE INDEX orders_customer ON orders (customer_id)`,
		`CREATE TABLE order_item (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id), sku TEXT)`,
		`CREATE INDEX order_item_order ON order_item (order_id)`,
		`CREATE TABLE visit (id INTEGER PRIMARY KEY, account_id INTEGER)`,
		`INSERT INTO customer VALUES (1, 'Jane.Doe@example.com'), (2, 'jane.doe@example.co')`,
		`INSERT INTO orders VALUES (10, 1), (11, 1), (20, 2)`,
		`INSERT INTO order_item VALUES (100, 10, 'A'), (101, 10, 'B'), (102, 11, 'C'), (200, 20, 'D')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return db, dsn
}

func linkedSpec(secretName string) privacyv1alpha1.DataStoreSpec {
	return privacyv1alpha1.DataStoreSpec{
		Type:       privacyv1alpha1.StoreTypePostgres,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secretName, Key: "dsn"}},
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "customer", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}}},
			{Name: "orders", Action: privacyv1alpha1.ActionDelete,
				Match:    []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}},
				Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "orderId", Column: "id"}}},
			{Name: "order_item", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "order_id", Identifier: "orderId"}}},
		},
	}
}

// linkedShopForJane runs the operator over the linked shop, mapped by a DataStore "shop" of a
// new namespace, with the identifiers Secret "jane" holding her email alone.
func linkedShopForJane(t *testing.T) (*sql.DB, string) {
	t.Helper()
	db, dsn := linkedShop(t)
	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: linkedSpec("shop-conn")})
	create(t, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	return db, ns
}

func countRows(t *testing.T, db *sql.DB, query string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Only the email is known: the customer's id and its orders' ids are derived, and the orders and
// order items are erased and verified through them, the bystander's left alone.
func TestLinkedDeletionFromTheEmailAlone(t *testing.T) {
	db, ns := linkedShopForJane(t)
	create(t, deletionRequest(ns, "erase-jane", "jane"))

	dr := waitDR(t, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonCompleted, settle)
	if !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		t.Errorf("conditions: %s", conditionsString(dr.Status.Conditions))
	}
	if st := storeStatus(t, dr, "shop"); st.Erased != 6 || st.Remaining != 0 || st.Phase != privacyv1alpha1.StoreVerified {
		t.Errorf("store: %+v", st)
	}
	for query, want := range map[string]int{
		`SELECT COUNT(*) FROM customer WHERE id = 1`:                 0,
		`SELECT COUNT(*) FROM orders WHERE customer_id = 1`:          0,
		`SELECT COUNT(*) FROM order_item WHERE order_id IN (10, 11)`: 0,
		`SELECT COUNT(*) FROM customer WHERE id = 2`:                 1,
		`SELECT COUNT(*) FROM orders WHERE id = 20`:                  1,
		`SELECT COUNT(*) FROM order_item WHERE id = 200`:             1,
	} {
		if got := countRows(t, db, query); got != want {
			t.Errorf("%s: %d, want %d", query, got, want)
		}
	}
	var derived corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "erase-jane-derived"}, &derived); err != nil {
		t.Fatalf("the derived values Secret: %v", err)
	}
	if !metav1.IsControlledBy(&derived, dr) || derived.Labels["app.kubernetes.io/managed-by"] != "dsr-operator" {
		t.Errorf("derived values Secret not owned or labelled: %+v", derived.ObjectMeta)
	}
	if !strings.Contains(string(derived.Data["values"]), `"orderId"`) {
		t.Errorf("derived values hold no order ids")
	}
}

// A dry run of linked data is planned from the count the store made while deriving: the plan
// counts the linked rows, and nothing changes.
func TestLinkedDryRunCountsWhatItWouldErase(t *testing.T) {
	db, ns := linkedShopForJane(t)
	before := countRows(t, db, `SELECT (SELECT COUNT(*) FROM customer) + (SELECT COUNT(*) FROM orders) + (SELECT COUNT(*) FROM order_item)`)
	create(t, deletionRequest(ns, "dry-jane", "jane", func(dr *privacyv1alpha1.DeletionRequest) { dr.Spec.DryRun = true }))

	dr := waitDR(t, ns, "dry-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonDryRun, settle)
	st := storeStatus(t, dr, "shop")
	if st.Phase != privacyv1alpha1.StoreDryRun || st.Planned == nil || st.Planned.Erased != 6 || st.Erased != 0 {
		t.Errorf("store: %+v (planned %+v)", st, st.Planned)
	}
	if len(st.Derived) == 0 {
		t.Errorf("no derived identifiers in the status: %+v", st)
	}
	after := countRows(t, db, `SELECT (SELECT COUNT(*) FROM customer) + (SELECT COUNT(*) FROM orders) + (SELECT COUNT(*) FROM order_item)`)
	if after != before {
		t.Errorf("a dry run changed rows: %d before, %d after", before, after)
	}
}

// A mapping that matches an identifier neither the Secret holds nor any mapping provides fails
// the request before anything is erased, naming the identifier.
func TestLinkedUnprovidedIdentifierFailsTheRequest(t *testing.T) {
	db, dsn := linkedShop(t)
	startOperator(t)
	ns := newNamespace(t, nil)
	create(t, connSecret(ns, "shop-conn", map[string]string{"dsn": dsn}))
	spec := linkedSpec("shop-conn")
	spec.Tables = append(spec.Tables, privacyv1alpha1.TableMapping{Name: "visit", Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "account_id", Identifier: "accountId"}}})
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: spec})
	create(t, secret(ns, "jane", map[string]string{"email": "jane.doe@example.com"}))
	create(t, deletionRequest(ns, "erase-jane", "jane"))

	dr := waitDR(t, ns, "erase-jane", privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonUnknownIdentifier, settle)
	if c := condition(dr.Status.Conditions, privacyv1alpha1.ConditionReady); !strings.Contains(c, `"accountId"`) {
		t.Errorf("the condition does not name the identifier: %s", c)
	}
	if dr.Status.Phase != privacyv1alpha1.PhaseFailed {
		t.Errorf("phase %s, want Failed", dr.Status.Phase)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM customer`); n != 2 {
		t.Errorf("customers: %d, want 2 (nothing erased)", n)
	}
}

// An access request over the same shop exports the rows reached through the derived ids too.
func TestLinkedAccessExportsDerivedRows(t *testing.T) {
	_, ns := linkedShopForJane(t)
	create(t, accessRequest(ns, "export-jane", "jane"))

	ar := waitAR(t, ns, "export-jane", privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonExportDelivered, settle)
	doc, _ := readExport(t, ar)
	// One customer, two orders, three order items; nothing of the bystander's.
	if len(doc.Stores) != 1 || doc.Stores[0].RecordCount != 6 {
		t.Fatalf("export: %+v", doc.Stores)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "export-jane-derived"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("derived values Secret kept after the export was delivered: %v", err)
	}
}

// The derived values go with the identifiers Secret when re-verification ends.
func TestLinkedDerivedValuesDeletedWithTheIdentifiers(t *testing.T) {
	_, ns := linkedShopForJane(t)
	create(t, deletionRequest(ns, "forget", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.Verification = &privacyv1alpha1.Verification{ReverifyInterval: &metav1.Duration{Duration: time.Second},
			ReverifyPeriod: &metav1.Duration{Duration: 3 * time.Second}}
	}))
	eventually(t, settle, func() (bool, string) {
		dr := getDR(t, ns, "forget")
		return dr.Status.Verification != nil && dr.Status.Verification.IdentifiersSecretDeleted, storesString(dr)
	})
	if dr := getDR(t, ns, "forget"); dr.Status.Verification.Verifications < 2 || !isTrue(dr.Status.Conditions, privacyv1alpha1.ConditionReady) {
		t.Errorf("re-verification: %+v; %s", dr.Status.Verification, conditionsString(dr.Status.Conditions))
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "forget-derived"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("derived values Secret still there: %v", err)
	}
}
